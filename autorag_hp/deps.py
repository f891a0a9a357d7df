"""Imports on first use: optional dependencies (:func:`require`) and the subpackages' lazy exports
(:func:`lazy_exports`).

The package imports nothing heavy at start-up (``autorag-hp --help`` never loads torch); a feature that
needs torch, mup, optuna, scikit-learn or ragas calls :func:`require` inside the function that needs it, and
a subpackage's ``__init__`` names its public objects without importing the modules that define them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

#: How to install each optional dependency (the command a user can paste).
INSTALL = {
    "torch": "install the CPU build, `pip install torch==2.13.0`, then `pip install -e '.[training]'`",
    "mup": "`pip install --no-deps mup==1.0.0` (--no-deps: it declares torchvision, which would pull a CUDA build "
           "of torch; its runtime never imports it)",
    "optuna": "`pip install -e '.[training]'`",
    "sklearn": "`pip install -e '.[training]'`",
    "ragas": "`pip install 'autorag-hp[eval]'`",
    "mlflow": "`pip install 'autorag-hp[mlflow]'` (mlflow-skinny, the tracking client)",
    "matplotlib": "`pip install 'autorag-hp[eval]'`",
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


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` (PEP 562) of a package whose public names live in submodules
    imported on first access. ``exports`` maps a name to its module, relative (``".pipeline"``) or absolute.

    Use: ``__getattr__, __dir__ = lazy_exports(__name__, {"RAGPipeline": ".pipeline"})``.
    """
    table = dict(exports)

    def __getattr__(name: str) -> Any:
        if name in table:
            return getattr(importlib.import_module(table[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(table) | set(vars(importlib.import_module(package))))

    return __getattr__, __dir__
