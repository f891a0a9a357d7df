"""What a trial records about the decision it belongs to: the typed protocol between tuner, policies and log.

A :class:`Decision` keeps the fields the *tuner* owns (which decision, which slot of its batch, how large the
batch, which question) apart from what the *policy* said about its choice (``policy``: e.g. ``hier_ucb``'s
``param``, the online policy's ``explore`` and ``pipeline``), as Optuna keeps ``system_attrs`` apart from
``user_attrs``. Policies receive a Decision in ``observe_decision`` / ``update`` / ``release`` and read
``decision.policy`` for their own keys and the typed fields for the tuner's.

The event log stores a decision as one flat JSON object (:meth:`Decision.to_info`), the format every earlier
version wrote, so stored studies and exported logs stay readable; a policy may therefore not use a key the
tuner owns (:data:`TUNER_KEYS`), and :meth:`Decision.from_info` is the one place that splits the two apart.

>>> d = Decision(number=3, batch=2, policy={"param": "top_k"})
>>> d.to_info()
{'param': 'top_k', 'decision': 3, 'slot': 0, 'batch': 2}
>>> Decision.from_info(d.to_info()) == d, d.weight, d.batch_open, d.next_slot().slot
(True, 0.5, True, 1)
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

TUNER_KEYS = ("decision", "slot", "batch", "question")


@dataclass(frozen=True)
class Decision:
    """One decision as a trial records it.

    Attributes:
        number: the policy's decision counter when the configuration was chosen (``None``: not handed out by a
            tuner, e.g. a policy driven directly; Optuna TPE then treats the report as a trial of its own).
        slot: 0 .. ``batch`` - 1, the trial's place in its batch (slot 0 is the one that makes the decision).
        batch: how many consecutive trials share this decision's configuration (the paper's B).
        question: a digest or index of the question the trial answers (``None``: not named); the ranking
            counts one sample per distinct (configuration, question) cell.
        policy: the policy's own information about its choice, read-only.
    """

    number: int | None = None
    slot: int = 0
    batch: int = 1
    question: Hashable | None = None
    policy: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clash = sorted(set(self.policy) & set(TUNER_KEYS))
        if clash:
            raise ValueError(f"a policy's info may not use the tuner's keys {clash}; rename them")
        if not isinstance(self.batch, int) or self.batch < 1 or not 0 <= self.slot < self.batch:
            raise ValueError(f"a decision needs 0 <= slot < batch, got slot={self.slot!r}, batch={self.batch!r}")
        object.__setattr__(self, "policy", MappingProxyType(dict(self.policy)))

    @property
    def weight(self) -> float:
        """The credit each of the batch's rewards carries (1/B): a complete batch counts as one pull."""
        return 1.0 / self.batch

    @property
    def batch_open(self) -> bool:
        """True while later slots of this decision's batch are still to be handed out."""
        return self.slot + 1 < self.batch

    def next_slot(self) -> Decision:
        """The same decision, one slot further (the question is the next trial's own)."""
        return replace(self, slot=self.slot + 1, question=None)

    def asking(self, question: Hashable | None) -> Decision:
        """The same decision for a trial that answers ``question``."""
        return replace(self, question=question)

    def to_info(self) -> dict[str, Any]:
        """The flat form stored in the event log (policy keys, then the tuner's)."""
        out = {**self.policy}
        if self.number is not None:
            out["decision"] = self.number
        out["slot"], out["batch"] = self.slot, self.batch
        if self.question is not None:
            out["question"] = self.question
        return out

    @classmethod
    def from_info(cls, info: Decision | Mapping[str, Any] | None) -> Decision:
        """A Decision from its stored form (or from a policy's bare info dict, or one already typed)."""
        if isinstance(info, Decision):
            return info
        if not info:
            return cls()
        number = info.get("decision")
        return cls(
            number=None if number is None else int(number),
            slot=int(info.get("slot", 0)),
            batch=int(info.get("batch", 1)),
            question=info.get("question"),
            policy={k: v for k, v in info.items() if k not in TUNER_KEYS},
        )
