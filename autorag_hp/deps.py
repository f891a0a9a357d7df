"""Optional dependencies: one place that imports them on first use and says how to install a missing one.

The package imports nothing heavy at start-up (``autorag-hp --help`` never loads torch); a feature that
needs torch, mup, optuna, scikit-learn or ragas calls :func:`require` inside the function that needs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: How to install each optional dependency (the command a user can paste).
INSTALL = {
    "torch": "install the CPU build, `pip install torch==2.13.0`, then `pip install -e '.[training]'`",
    "mup": "`pip install --no-deps mup==1.0.0` (--no-deps: it declares torchvision, which would pull a CUDA build "
           "of torch; its runtime never imports it)",
    "optuna": "`pip install -e '.[training]'`",
    "sklearn": "`pip install -e '.[training]'`",
    "ragas": "`pip install 'autorag-hp[eval]'`",
}


def require(module: str, needed_by: str) -> ModuleType:
    """``import module``, or an :class:`ImportError` naming what needs it (``needed_by``) and how to install it.

    >>> require("json", "this example").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        how = INSTALL.get(top, f"`pip install {top}`")
        raise ImportError(f"{needed_by} needs {top}: {how} ({exc})") from exc
