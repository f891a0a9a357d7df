"""Exceptions. Each names the problem and what to do next; none is raised after anything was stored."""

from __future__ import annotations


class AutoRAGHPError(Exception):
    """Base class of every error raised by autorag-hp."""


class InvalidSpaceError(AutoRAGHPError, ValueError):
    """The search space is malformed (empty, duplicate names, unusable values)."""


class InvalidConfigError(AutoRAGHPError, ValueError):
    """A configuration names an unknown parameter or a value outside the space."""


class InvalidRewardError(AutoRAGHPError, ValueError):
    """A reward is not a finite real number."""


class UnknownPolicyError(AutoRAGHPError, ValueError):
    """No policy is registered under that name."""


class UnknownTrialError(AutoRAGHPError, LookupError):
    """No trial with that id exists in this study."""

    def __str__(self) -> str:  # LookupError would otherwise repr() the message
        return str(self.args[0]) if self.args else "unknown trial"


class TrialAlreadyReportedError(AutoRAGHPError):
    """The trial was reported before; the second report is rejected and changes nothing."""


class TrialExpiredError(AutoRAGHPError):
    """The trial's time to report ran out; its late reward is rejected and changes nothing."""


class SpaceExhaustedError(AutoRAGHPError):
    """The policy has nothing left to suggest (e.g. grid search tried every configuration)."""


class StorageMismatchError(AutoRAGHPError):
    """The storage holds a study under this name whose search space differs from the one given."""


class UnknownStudyError(AutoRAGHPError, KeyError):
    """No study with that name exists in this storage; open it (``open_study``) first."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else "unknown study"


class DuplicateTrialError(AutoRAGHPError, ValueError):
    """A trial with that id already exists in the study (a log imported twice); nothing is written."""


class InvalidEventLogError(AutoRAGHPError, ValueError):
    """An event log to import is malformed (bad line, unknown kind, event before its suggestion, no reward)."""


class InvalidStorageError(AutoRAGHPError, ValueError):
    """The storage location or an option of it is unusable (not a URL, no such driver, bad setting)."""
