"""The one cache folder: ``$AUTORAG_HP_CACHE``, else ``~/.cache/autorag-hp``.

Inside it: ``models/`` (converted generator models, rebuilt embedding models), ``kernel-plans/``,
``embeddings.sqlite`` and the index cache.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root(*parts: str) -> Path:
    """``$AUTORAG_HP_CACHE`` (else ``~/.cache/autorag-hp``), joined with ``parts``."""
    return Path(os.environ.get("AUTORAG_HP_CACHE") or Path.home() / ".cache" / "autorag-hp").joinpath(*parts)
