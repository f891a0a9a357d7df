"""autorag-hp: tune RAG pipelines online and offline with hierarchical multi-armed bandits.

>>> from autorag_hp import SearchSpace, Tuner
>>> space = SearchSpace({"retrieval": {"top_k": [1, 3, 5]}, "generation": {"prompt": ["concise", "cite"]}})
>>> tuner = Tuner(space, policy="hier_ucb", seed=0)
>>> trial = tuner.suggest()
>>> tuner.report(trial.id, 0.73)
>>> tuner.best(1)[0].mean
0.73
"""

from importlib import metadata as _metadata

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
from autorag_hp.space import Config, Param, SearchSpace
from autorag_hp.tuner import BestRow, Trial, Tuner

try:  # one place for the version: the installed distribution's metadata (pyproject.toml)
    __version__ = _metadata.version("autorag-hp")
except _metadata.PackageNotFoundError:  # a checkout on sys.path without an install
    __version__ = "0+unknown"

__all__ = [
    "SearchSpace", "Param", "Config", "Tuner", "Trial", "BestRow",
    "AutoRAGHPError", "InvalidSpaceError", "InvalidConfigError", "InvalidRewardError", "UnknownPolicyError",
    "UnknownTrialError", "TrialAlreadyReportedError", "TrialExpiredError", "SpaceExhaustedError",
    "StorageMismatchError", "UnknownStudyError", "DuplicateTrialError", "InvalidEventLogError", "InvalidStorageError",
    "__version__",
]
