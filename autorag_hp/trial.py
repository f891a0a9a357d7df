"""What the tuner hands out (:class:`Trial`) and the checks on what comes back (a question, a reward)."""

from __future__ import annotations

import hashlib
import math
import numbers
from typing import Any, NamedTuple

from autorag_hp.decision import Decision
from autorag_hp.errors import InvalidRewardError
from autorag_hp.ranking import Estimate
from autorag_hp.space import Config


class Trial(NamedTuple):
    """One suggestion: evaluate ``config`` on one question and report the reward under ``id``.

    ``decision`` / ``slot`` are the decision's number and the trial's slot in its batch; ``info`` is the stored
    flat form and :attr:`record` the typed :class:`~autorag_hp.decision.Decision`. A Trial is what the tuner
    hands out; what the storage keeps of it (state, reward, times) is its
    :class:`~autorag_hp.storage.TrialRecord`, read back with :meth:`Tuner.trial` / :meth:`Tuner.trials` (the
    split Optuna makes between ``Trial`` and ``FrozenTrial``)."""

    id: str
    config: Config
    decision: int
    slot: int
    info: dict[str, Any] = {}  # noqa: RUF012 - never mutated
    created_at: float = 0.0
    expires_at: float | None = None

    @property
    def record(self) -> Decision:
        """The typed decision: the tuner's fields apart from the policy's own ``policy`` info."""
        return Decision.from_info(self.info)


BestRow = Estimate  # the row :meth:`Tuner.best` returns (kept under its old name)


def question_key(question: Any) -> str:
    """The digest a trial records of its question (12 hex digits of SHA-1 of the stripped text)."""
    if not isinstance(question, str) or not question.strip():
        raise TypeError(f"question must be a non-empty string (its text or a stable id), got {question!r}")
    return hashlib.sha1(question.strip().encode("utf-8")).hexdigest()[:12]


def check_reward(reward: Any) -> float:
    """``reward`` as a float; :class:`InvalidRewardError` for a bool, a non-number, NaN or an infinity."""
    if type(reward) is float:  # the common case, without the ABC check
        if math.isfinite(reward):
            return reward
        raise InvalidRewardError(f"reward must be finite, got {reward!r}; map failures to a finite penalty instead")
    if isinstance(reward, bool) or not isinstance(reward, numbers.Real):
        raise InvalidRewardError(f"reward must be a real number, got {type(reward).__name__} {reward!r}")
    value = float(reward)
    if not math.isfinite(value):
        raise InvalidRewardError(f"reward must be finite, got {value!r}; map failures to a finite penalty instead")
    return value


__all__ = ["BestRow", "Trial", "check_reward", "question_key"]
