"""autorag-hp: tune RAG pipelines online and offline with hierarchical multi-armed bandits.

>>> from autorag_hp import SearchSpace, Tuner
>>> space = SearchSpace({"retrieval": {"top_k": [1, 3, 5]}, "generation": {"prompt": ["concise", "cite"]}})
>>> tuner = Tuner(space, policy="hier_ucb", seed=0)
>>> trial = tuner.suggest()
>>> tuner.report(trial.id, 0.73)
>>> tuner.best(1)[0].mean
0.73

The public names are imported on first use (:func:`autorag_hp.deps.lazy_exports`): ``import autorag_hp``
loads neither numpy nor the tuner, so ``autorag-hp --help`` starts fast.
"""

from autorag_hp.deps import lazy_exports as _lazy_exports
from autorag_hp.errors import (
    AutoRAGHPError,
    DuplicateTrialError,
    InvalidConfigError,
    InvalidEventLogError,
    InvalidRewardError,
    InvalidSpaceError,
    InvalidStorageError,
    SpaceExhaustedError,
    StorageMismatchError,
    TrialAlreadyReportedError,
    TrialExpiredError,
    UnknownPolicyError,
    UnknownStudyError,
    UnknownTrialError,
)

_LAZY = {
    "SearchSpace": "autorag_hp.space", "Param": "autorag_hp.space", "Config": "autorag_hp.space",
    "Tuner": "autorag_hp.tuner", "Trial": "autorag_hp.trial", "BestRow": "autorag_hp.trial",
}
_getattr, __dir__ = _lazy_exports(__name__, _LAZY)


def version() -> str:
    """The installed distribution's version (pyproject.toml), or ``0+unknown`` for a checkout without an install."""
    from importlib import metadata  # ~30 ms: read only when asked

    try:
        return metadata.version("autorag-hp")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def __getattr__(name: str):
    if name == "__version__":
        return version()
    return _getattr(name)


__all__ = [
    "SearchSpace", "Param", "Config", "Tuner", "Trial", "BestRow",
    "AutoRAGHPError", "InvalidSpaceError", "InvalidConfigError", "InvalidRewardError", "UnknownPolicyError",
    "UnknownTrialError", "TrialAlreadyReportedError", "TrialExpiredError", "SpaceExhaustedError",
    "StorageMismatchError", "UnknownStudyError", "DuplicateTrialError", "InvalidEventLogError", "InvalidStorageError",
    "__version__",
]
