"""The storage contract, which every backend (memory, SQLite, PostgreSQL) passes the same test suite for.

* **Source of truth.** An append-only event log per study: ``suggest`` (a trial was handed out), ``report``
  (its reward arrived), ``expire`` (its time ran out). Each event carries its time, trial id, configuration
  (JSON), reward and the policy's info. Per-configuration aggregates (count, sum, sum of squares,
  :meth:`Storage.stats`) are the log's own (:func:`stats_from_events`): SQL storage computes them from it when
  asked, so no write contends for an aggregate row.
* **Ordering.** Event sequence numbers are unique and increase with the time an event is written. On SQLite
  (writers serialised by ``BEGIN IMMEDIATE``) and in memory they also increase in commit order. On PostgreSQL
  no lock is shared by a study's writers, so a later number may commit first; :meth:`Storage.read_log` then
  returns, with the events, the horizon that tells a reader which ones it may still discover
  (:mod:`autorag_hp.fold`). Nothing shared is held for longer than one statement.
* **Durability.** When :meth:`suggest`, :meth:`report` or :meth:`expire` returns, the change is committed:
  it survives the process being killed (SQLite in WAL mode with ``synchronous=NORMAL``; pass
  ``sqlite_synchronous="FULL"`` to survive power loss too). The memory backend is durable for the life of
  the process only.
* **Idempotence and validation.** A trial is reported at most once: a second report raises
  :class:`TrialAlreadyReportedError`, a report after expiry :class:`TrialExpiredError`, an unknown id
  :class:`UnknownTrialError`, a second trial with the same id :class:`DuplicateTrialError`, any call on a
  study that was never opened :class:`UnknownStudyError` (all in :mod:`autorag_hp.errors`, the same in every
  backend); in each case nothing is written.
* **Thread and process safety.** Every method may be called from many threads; SQL backends may be shared by
  many processes (and machines, for PostgreSQL), which may also start at once on a fresh database.
* **Listings by keyset.** :meth:`Storage.trial_page` returns one page of trials in creation order (newest or
  oldest first), optionally only one state's or one owner's, from an index: its cost does not grow with the
  study's history. A page's ``next`` is the cursor of the following page.
* **Snapshots.** A tuner may store its folded state at event ``seq`` (:class:`Snapshot`, keyed by a version
  string the tuner derives from its policy and space) with the event that makes it due, in the same transaction
  (``suggest(..., snapshot=)`` / ``report(..., snapshot=)``), or alone (:meth:`Storage.save_snapshot`). The
  storage keeps, per study and version, the snapshot of the highest ``seq``; it never interprets the state.
"""

from __future__ import annotations

import json
import math
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from autorag_hp.errors import (
    DuplicateTrialError,
    InvalidEventLogError,
    StorageMismatchError,
    TrialAlreadyReportedError,
    TrialExpiredError,
    UnknownTrialError,
)
from autorag_hp.space import Config, SearchSpace

SUGGEST, REPORT, EXPIRE = "suggest", "report", "expire"
PENDING, REPORTED, EXPIRED = "pending", "reported", "expired"


class Event(NamedTuple):
    """One entry of the append-only log (a NamedTuple: cheap to create on the hot path)."""

    seq: int
    kind: str
    trial_id: str
    config: str  # canonical JSON of the configuration
    reward: float | None
    info: dict[str, Any]
    time: float

    def to_json(self) -> str:
        d = self._asdict()
        d["config"] = json.loads(self.config)
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> Event:
        try:
            d = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidEventLogError(f"event line is not JSON ({exc}): {line[:200]}") from None
        missing = {"seq", "kind", "trial_id", "config", "time"} - set(d)
        if missing:
            raise InvalidEventLogError(f"event line is missing field(s) {sorted(missing)}: {line[:200]}")
        if d["kind"] not in (SUGGEST, REPORT, EXPIRE):
            raise InvalidEventLogError(f"unknown event kind {d['kind']!r}; expected suggest, report or expire")
        return cls(
            seq=int(d["seq"]),
            kind=d["kind"],
            trial_id=str(d["trial_id"]),
            config=Config(d["config"]).to_json(),
            reward=None if d.get("reward") is None else float(d["reward"]),
            info=d.get("info") or {},
            time=float(d["time"]),
        )


class TrialRecord(NamedTuple):
    """A trial as stored: its configuration (canonical JSON), policy info, state and reward."""

    trial_id: str
    config: str  # canonical JSON
    config_id: str
    info: dict[str, Any] = {}  # noqa: RUF012 - never mutated
    state: str = PENDING
    created_at: float = 0.0
    expires_at: float | None = None
    reward: float | None = None
    reported_at: float | None = None
    owner: str | None = None  # the client that asked for it (listings show a client its own trials only)

    def overdue(self, now: float) -> bool:
        """Its deadline passed before ``now`` (a report at ``now`` comes too late)."""
        return self.expires_at is not None and now > self.expires_at

    def as_reported(self, reward: float, now: float) -> TrialRecord:
        # built field by field, not by _replace: this is on every report's path (3x faster)
        return TrialRecord(
            self.trial_id, self.config, self.config_id, self.info, REPORTED, self.created_at, self.expires_at, reward, now,
            self.owner,
        )

    def as_expired(self) -> TrialRecord:
        return self._replace(state=EXPIRED)


class LogRead(NamedTuple):
    """One :meth:`Storage.read_log`: the events, in sequence order; on a backend whose commits may come out of
    sequence order (PostgreSQL), ``horizon``, the transaction id below which every writer had ended when the
    events were read, and ``sticky``, the sequence numbers among them written at or above it (the next read,
    asked from this horizon, returns them again)."""

    events: list[Event]
    horizon: int | None = None
    sticky: frozenset[int] = frozenset()


class TrialPage(NamedTuple):
    """One page of :meth:`Storage.trial_page`: the trials, and the cursor of the next page (``None``: the last)."""

    trials: list[TrialRecord]
    next: int | None


class Snapshot(NamedTuple):
    """A tuner's state folded over the events up to ``seq``, as JSON (``state``), under its ``version`` (a digest
    of what the state depends on; a reader with another version ignores it)."""

    version: str
    seq: int
    state: str


@dataclass(frozen=True)
class Stat:
    config: str
    count: int
    sum: float
    sumsq: float

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else math.nan


# --- the contract's checks: every backend looks the trial up its own way, then applies these ----------------
def check_space(study: str, where: str, stored_fingerprint: str, space: SearchSpace) -> None:
    """:class:`StorageMismatchError` if the study ``where`` (a storage URL) holds was made for another space."""
    if stored_fingerprint != space.fingerprint:
        raise StorageMismatchError(
            f"study {study!r} in {where} was created with a different search space "
            f"({stored_fingerprint} != {space.fingerprint}); use another study name"
        )


def require_trial(study: str, trial_id: str, trial: TrialRecord | None) -> TrialRecord:
    """``trial`` as the backend found it; :class:`UnknownTrialError` where it found none."""
    if trial is None:
        raise UnknownTrialError(f"unknown trial id {trial_id!r} in study {study!r}")
    return trial


def check_report(study: str, trial_id: str, trial: TrialRecord | None, now: float) -> TrialRecord:
    """The trial, if a report at ``now`` may be stored; else the contract's error (unknown id, a second
    report, a report after expiry or past the deadline)."""
    tr = require_trial(study, trial_id, trial)
    if tr.state == REPORTED:
        raise TrialAlreadyReportedError(f"trial {trial_id!r} was already reported (reward {tr.reward!r})")
    if tr.state == EXPIRED or tr.overdue(now):
        raise TrialExpiredError(f"trial {trial_id!r} expired at {tr.expires_at}; its reward is not counted")
    return tr


TRIAL_STATES = (PENDING, REPORTED, EXPIRED)


def check_page(state: str | None, after: int | None, limit: int) -> None:
    """ValueError for a listing's arguments that no backend accepts (unknown state, a cursor or limit that is not
    a non-negative / positive int)."""
    if state is not None and state not in TRIAL_STATES:
        raise ValueError(f"state must be one of {', '.join(TRIAL_STATES)} or None, got {state!r}")
    if after is not None and (isinstance(after, bool) or not isinstance(after, int) or after < 0):
        raise ValueError(f"after must be a cursor from a previous page (an int >= 0) or None, got {after!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive int, got {limit!r}")


class Storage(ABC):
    """Abstract storage. Implementations: :class:`MemoryStorage`, :class:`SQLStorage`."""

    url: str = "memory"

    @abstractmethod
    def open_study(self, name: str, space: SearchSpace, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create the study or open the existing one; raise StorageMismatchError if its space differs."""

    @abstractmethod
    def study_meta(self, name: str) -> dict[str, Any]:
        """What :meth:`open_study` stored: ``name``, ``fingerprint``, ``space`` (its ``to_dict()``) and the
        tuner's ``policy``, ``policy_params``, ``seed``, ``batch_size``; :class:`UnknownStudyError` if none."""

    @abstractmethod
    def suggest(self, study: str, trial: TrialRecord, snapshot: Snapshot | None = None) -> int:
        """Store a new pending trial and its ``suggest`` event; return the event's sequence number. A
        ``snapshot`` is stored in the same transaction (as :meth:`save_snapshot`), and only if the trial is."""

    @abstractmethod
    def report(self, study: str, trial_id: str, reward: float, now: float,
               snapshot: Snapshot | None = None) -> tuple[int, TrialRecord]:
        """Mark the trial reported, append the ``report`` event, update aggregates; return (seq, trial). A
        ``snapshot`` is stored in the same transaction (as :meth:`save_snapshot`), and only if the report is."""

    @abstractmethod
    def expire(self, study: str, now: float) -> list[TrialRecord]:
        """Expire every pending trial whose deadline passed; append an ``expire`` event for each."""

    @abstractmethod
    def expire_trial(self, study: str, trial_id: str, now: float) -> None:
        """Expire one pending trial now (used when importing a log); a no-op if it is reported or expired
        already, :class:`UnknownTrialError` if there is no such trial."""

    @abstractmethod
    def events(self, study: str, after: int = 0, limit: int | None = None) -> list[Event]:
        """Events with sequence number greater than ``after``, in order."""

    def read_log(self, study: str, after: int = 0, horizon: int | None = None) -> LogRead:
        """The events a follower at (``after``, ``horizon``) may not have seen (:mod:`autorag_hp.fold`): those after
        ``after`` and, where commits may come out of order, those written at or above ``horizon``. The default,
        for a log in commit order, is :meth:`events` after ``after``."""
        return LogRead(self.events(study, after))

    @abstractmethod
    def stats(self, study: str) -> dict[str, Stat]:
        """Aggregates per configuration id."""

    @abstractmethod
    def trial(self, study: str, trial_id: str) -> TrialRecord:
        """One trial; :class:`UnknownTrialError` if there is none."""

    @abstractmethod
    def trials(self, study: str, state: str | None = None) -> list[TrialRecord]:
        """All trials of the study (optionally only those in ``state``), in creation order."""

    @abstractmethod
    def trial_page(self, study: str, *, state: str | None = None, owner: str | None = None, after: int | None = None,
                   limit: int = 100, newest_first: bool = True) -> TrialPage:
        """Up to ``limit`` trials in creation order, newest first (or oldest first), only those in ``state`` and of
        ``owner`` where given; ``after``: the ``next`` cursor of the previous page (newest first: the trials created
        before it; oldest first: after it). Served from an index, in time independent of the study's size."""

    @abstractmethod
    def snapshot(self, study: str, version: str) -> Snapshot | None:
        """The stored snapshot of ``version`` with the highest ``seq``; None if there is none."""

    @abstractmethod
    def save_snapshot(self, study: str, snapshot: Snapshot) -> None:
        """Store ``snapshot`` unless one of its version with a ``seq`` as high is stored already."""

    def import_events(self, study: str, events: Iterable[Event]) -> int:
        """Append events from another log (new sequence numbers, same order); return how many.

        One implementation for every backend, through its own public operations (so every invariant holds):
        suggestions create trials, reports report them, expiries expire them. The whole log is checked before
        anything is written: :class:`InvalidEventLogError` for a trial suggested twice, an event before its
        trial's suggestion or a report without a finite reward; :class:`DuplicateTrialError` for a trial the
        study has already (the log was imported before; a second import would count twice).
        """
        events = list(events)
        suggested: set[str] = set()
        for ev in events:
            if ev.kind == SUGGEST:
                if ev.trial_id in suggested:
                    raise InvalidEventLogError(f"trial {ev.trial_id!r} is suggested twice in the imported log")
                suggested.add(ev.trial_id)
            elif ev.trial_id not in suggested:
                raise InvalidEventLogError(
                    f"event {ev.seq} ({ev.kind}) refers to trial {ev.trial_id!r} before its suggestion"
                )
            if ev.kind == REPORT and (ev.reward is None or not math.isfinite(ev.reward)):
                raise InvalidEventLogError(f"event {ev.seq}: report without a finite reward")
        for tid in suggested:
            try:
                self.trial(study, tid)
            except UnknownTrialError:
                continue
            raise DuplicateTrialError(f"trial {tid!r} already exists in study {study!r}; the log was imported before")
        for ev in events:
            if ev.kind == SUGGEST:
                cfg = Config.from_json(ev.config)
                self.suggest(study, TrialRecord(ev.trial_id, cfg.to_json(), cfg.id, ev.info, created_at=ev.time))
            elif ev.kind == REPORT:
                self.report(study, ev.trial_id, float(ev.reward), ev.time)
            elif ev.kind == EXPIRE:
                self.expire_trial(study, ev.trial_id, ev.time)
        return len(events)

    @abstractmethod
    def studies(self) -> list[str]:
        """Names of the studies in this storage."""

    def lock_held(self) -> dict[str, float] | None:
        """How long this process's suggests and reports held a lock that other processes' writers wait for (count,
        mean, p50, p99 and max in ms over the most recent 10,000): SQLite's database write lock, from ``BEGIN
        IMMEDIATE`` to the commit; on PostgreSQL the write's one statement, commit included (the row lock a report
        takes on its configuration's aggregate is held for part of it). None for a backend shared with no other
        process."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook; backends without resources keep it
        """Release connections. The default does nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stats_from_events(events: Iterable[Event]) -> dict[str, Stat]:
    """Fold ``report`` events into per-configuration aggregates (the definition the backends must match)."""
    acc: dict[str, list] = {}
    for ev in events:
        if ev.kind != REPORT:
            continue
        cid = Config.from_json(ev.config).id
        a = acc.setdefault(cid, [ev.config, 0, 0.0, 0.0])
        a[1] += 1
        a[2] += ev.reward
        a[3] += ev.reward * ev.reward
    return {cid: Stat(*a) for cid, a in acc.items()}


class HeldTimer:
    """Durations a lock was held, thread-safe: the count and max of all, quantiles of the most recent ``keep``."""

    def __init__(self, keep: int = 10_000):
        self._lock = threading.Lock()
        self._recent: deque[float] = deque(maxlen=keep)
        self._n = 0
        self._max = 0.0

    def observe(self, seconds: float) -> None:
        with self._lock:
            self._recent.append(seconds)
            self._n += 1
            self._max = max(self._max, seconds)

    def summary(self) -> dict[str, float]:
        with self._lock:
            recent = sorted(self._recent)
            n, top = self._n, self._max
        if not recent:
            return {"count": 0}

        def q(p: float) -> float:
            return 1e3 * recent[min(len(recent) - 1, int(p * (len(recent) - 1) + 0.5))]

        return {"count": n, "mean_ms": 1e3 * sum(recent) / len(recent), "p50_ms": q(0.5), "p99_ms": q(0.99),
                "max_ms": 1e3 * top}
