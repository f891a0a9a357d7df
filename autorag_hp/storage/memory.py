"""In-process storage: fast, thread-safe, gone when the process ends."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from autorag_hp.errors import DuplicateTrialError, UnknownStudyError
from autorag_hp.space import SearchSpace
from autorag_hp.storage.base import (
    EXPIRE,
    PENDING,
    REPORT,
    SUGGEST,
    Event,
    Stat,
    Storage,
    TrialRecord,
    check_report,
    check_space,
    require_trial,
    stats_from_events,
)


class _Study:
    __slots__ = ("meta", "events", "trials", "stats")

    def __init__(self, meta: dict[str, Any]):
        self.meta = meta
        self.events: list[Event] = []
        self.trials: dict[str, TrialRecord] = {}
        self.stats: dict[str, list] = {}


class MemoryStorage(Storage):
    url = "memory"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._studies: dict[str, _Study] = {}

    def _study(self, name: str) -> _Study:
        try:
            return self._studies[name]
        except KeyError:
            raise UnknownStudyError(f"no study named {name!r} in {self.url}; open it first") from None

    def open_study(self, name: str, space: SearchSpace, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._lock:
            st = self._studies.get(name)
            if st is None:
                st = _Study({"name": name, "fingerprint": space.fingerprint, "space": space.to_dict(), **(meta or {})})
                self._studies[name] = st
            check_space(name, self.url, st.meta["fingerprint"], space)
            return dict(st.meta)

    def _append(self, st: _Study, kind: str, tr: TrialRecord, reward: float | None, now: float) -> int:
        seq = len(st.events) + 1
        st.events.append(Event(seq, kind, tr.trial_id, tr.config, reward, tr.info, now))
        return seq

    def suggest(self, study: str, trial: TrialRecord) -> int:
        with self._lock:
            st = self._study(study)
            if trial.trial_id in st.trials:
                raise DuplicateTrialError(f"trial id {trial.trial_id!r} already exists in study {study!r}")
            st.trials[trial.trial_id] = trial
            return self._append(st, SUGGEST, trial, None, trial.created_at)

    def report(self, study: str, trial_id: str, reward: float, now: float) -> tuple[int, TrialRecord]:
        with self._lock:
            st = self._study(study)
            tr = check_report(study, trial_id, st.trials.get(trial_id), now).as_reported(reward, now)
            st.trials[trial_id] = tr
            seq = self._append(st, REPORT, tr, reward, now)
            a = st.stats.setdefault(tr.config_id, [tr.config, 0, 0.0, 0.0])
            a[1] += 1
            a[2] += reward
            a[3] += reward * reward
            return seq, tr

    def expire(self, study: str, now: float) -> list[TrialRecord]:
        with self._lock:
            st = self._study(study)
            out = []
            for tid, tr in st.trials.items():
                if tr.state == PENDING and tr.overdue(now):
                    tr = tr.as_expired()
                    st.trials[tid] = tr
                    self._append(st, EXPIRE, tr, None, now)
                    out.append(tr)
            return out

    def expire_trial(self, study: str, trial_id: str, now: float) -> None:
        with self._lock:
            st = self._study(study)
            tr = require_trial(study, trial_id, st.trials.get(trial_id))
            if tr.state == PENDING:
                tr = tr.as_expired()
                st.trials[trial_id] = tr
                self._append(st, EXPIRE, tr, None, now)

    def events(self, study: str, after: int = 0, limit: int | None = None) -> list[Event]:
        with self._lock:
            evs = self._study(study).events
            return evs[after : None if limit is None else after + limit]

    def stats(self, study: str) -> dict[str, Stat]:
        with self._lock:
            return {cid: Stat(*a) for cid, a in self._study(study).stats.items()}

    def trial(self, study: str, trial_id: str) -> TrialRecord:
        with self._lock:
            return require_trial(study, trial_id, self._study(study).trials.get(trial_id))

    def trials(self, study: str, state: str | None = None) -> list[TrialRecord]:
        with self._lock:
            return [t for t in self._study(study).trials.values() if state is None or t.state == state]

    def rebuild_stats(self, study: str) -> None:
        with self._lock:
            st = self._study(study)
            st.stats = {cid: [s.config, s.count, s.sum, s.sumsq] for cid, s in stats_from_events(st.events).items()}

    def import_events(self, study: str, events: Iterable[Event]) -> int:
        with self._lock:  # no other thread writes between the log's checks and its last event
            return super().import_events(study, events)

    def studies(self) -> list[str]:
        with self._lock:
            return list(self._studies)
