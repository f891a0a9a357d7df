"""A pipeline object from any spec the grid runner, the benchmarks and their worker processes accept.

:func:`autorag_hp.rag.load_pipeline` reads one kind of spec, a pipeline YAML (a bundled name or a file).
:func:`pipeline_from_spec` accepts that and also a ready object or a factory (``package.module:factory``,
``path/to/file.py:factory``), so that a spec string names any duck-typed pipeline and a spawned worker can
rebuild it from that string.

>>> pipe = pipeline_from_spec("tests/test_grid_toy.py:make_pipeline")  # doctest: +SKIP
>>> pipe = pipeline_from_spec("python_docs_faq", {"generator": "extractive"})  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def pipeline_from_spec(spec: Any, overrides: Mapping[str, Any] | None = None) -> Any:
    """A pipeline object from ``spec``: an object (returned), a YAML path or bundled name
    (:func:`autorag_hp.rag.load_pipeline`), ``package.module:factory`` or ``path/to/file.py:factory``.
    ``overrides`` are keyword arguments for the loader or factory (e.g. ``{"generator": "extractive"}`` or
    ``{"generator": {"type": "local", "threads": 1}}``)."""
    overrides = dict(overrides or {})
    if not isinstance(spec, str | os.PathLike):
        return spec
    s = str(spec)
    if ":" in s and not s.endswith((".yaml", ".yml")) and not (len(s) > 1 and s[1] == ":"):
        target, _, attr = s.rpartition(":")
        if target.endswith(".py"):
            path = Path(target).resolve()
            modname = f"_autorag_grid_{path.stem}"
            mod = sys.modules.get(modname)
            if mod is None:
                sp = importlib.util.spec_from_file_location(modname, path)
                if sp is None or sp.loader is None:
                    raise FileNotFoundError(f"pipeline factory file {target!r} not found")
                mod = importlib.util.module_from_spec(sp)
                sys.modules[modname] = mod
                sp.loader.exec_module(mod)
        else:
            mod = importlib.import_module(target)
        return getattr(mod, attr)(**overrides)
    from autorag_hp.rag.pipeline import load_pipeline  # the RAG pipeline's YAML loader

    return load_pipeline(s, **overrides)
