"""In-process storage: fast, thread-safe, gone when the process ends."""

from __future__ import annotations

import bisect
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
    Snapshot,
    Stat,
    Storage,
    TrialPage,
    TrialRecord,
    check_page,
    check_report,
    check_space,
    require_trial,
)


class _Order:
    """The index listings read: the trials' creation numbers, ascending, per (owner, state) key (``None``: any)."""

    __slots__ = ("lists", "ids")

    def __init__(self) -> None:
        self.lists: dict[tuple[str | None, str | None], list[int]] = {}
        self.ids: dict[int, str] = {}  # creation number -> trial id

    @staticmethod
    def _keys(owner: str | None, state: str) -> tuple[tuple[str | None, str | None], ...]:
        mine = ((None, None), (None, state))
        return mine if owner is None else (*mine, (owner, None), (owner, state))

    def add(self, n: int, trial_id: str, owner: str | None, state: str) -> None:
        self.ids[n] = trial_id
        for key in self._keys(owner, state):
            bisect.insort(self.lists.setdefault(key, []), n)  # appended at the end: n only grows

    def move(self, n: int, owner: str | None, old: str, new: str) -> None:
        for key in self._keys(owner, old)[1::2]:  # the (.., old) lists
            ns = self.lists[key]
            del ns[bisect.bisect_left(ns, n)]
        for key in self._keys(owner, new)[1::2]:
            bisect.insort(self.lists.setdefault(key, []), n)

    def numbers(self, owner: str | None, state: str | None) -> list[int]:
        return self.lists.get((owner, state), [])

    def page(self, owner: str | None, state: str | None, after: int | None, limit: int,
             newest_first: bool) -> tuple[list[str], int | None]:
        ns = self.numbers(owner, state)
        if newest_first:
            hi = len(ns) if after is None else bisect.bisect_left(ns, after)
            got = ns[max(0, hi - limit - 1):hi][::-1]
        else:
            lo = 0 if after is None else bisect.bisect_right(ns, after)
            got = ns[lo:lo + limit + 1]
        more = len(got) > limit
        got = got[:limit]
        return [self.ids[n] for n in got], (got[-1] if more and got else None)


class _Study:
    __slots__ = ("meta", "events", "trials", "stats", "order", "number", "snapshots")

    def __init__(self, meta: dict[str, Any]):
        self.meta = meta
        self.events: list[Event] = []
        self.trials: dict[str, TrialRecord] = {}
        self.stats: dict[str, list] = {}
        self.order = _Order()
        self.number: dict[str, int] = {}  # trial id -> creation number (its suggest event's seq)
        self.snapshots: dict[str, Snapshot] = {}

    def put_snapshot(self, snapshot: Snapshot | None) -> None:
        if snapshot is None:
            return
        old = self.snapshots.get(snapshot.version)
        if old is None or old.seq < snapshot.seq:
            self.snapshots[snapshot.version] = snapshot

    def set_state(self, tr: TrialRecord) -> None:
        """Replace a trial by its next state, keeping the listing index in step."""
        old = self.trials[tr.trial_id]
        self.trials[tr.trial_id] = tr
        self.order.move(self.number[tr.trial_id], tr.owner, old.state, tr.state)


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

    def study_meta(self, name: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._study(name).meta)

    def _append(self, st: _Study, kind: str, tr: TrialRecord, reward: float | None, now: float) -> int:
        seq = len(st.events) + 1
        st.events.append(Event(seq, kind, tr.trial_id, tr.config, reward, tr.info, now))
        return seq

    def suggest(self, study: str, trial: TrialRecord, snapshot: Snapshot | None = None) -> int:
        with self._lock:
            st = self._study(study)
            if trial.trial_id in st.trials:
                raise DuplicateTrialError(f"trial id {trial.trial_id!r} already exists in study {study!r}")
            st.trials[trial.trial_id] = trial
            seq = self._append(st, SUGGEST, trial, None, trial.created_at)
            st.number[trial.trial_id] = seq
            st.order.add(seq, trial.trial_id, trial.owner, trial.state)
            st.put_snapshot(snapshot)
            return seq

    def report(self, study: str, trial_id: str, reward: float, now: float,
               snapshot: Snapshot | None = None) -> tuple[int, TrialRecord]:
        with self._lock:
            st = self._study(study)
            tr = check_report(study, trial_id, st.trials.get(trial_id), now).as_reported(reward, now)
            st.set_state(tr)
            seq = self._append(st, REPORT, tr, reward, now)
            st.put_snapshot(snapshot)
            a = st.stats.setdefault(tr.config_id, [tr.config, 0, 0.0, 0.0])
            a[1] += 1
            a[2] += reward
            a[3] += reward * reward
            return seq, tr

    def expire(self, study: str, now: float) -> list[TrialRecord]:
        with self._lock:
            st = self._study(study)
            out = []
            for n in list(st.order.numbers(None, PENDING)):  # the pending trials only, in creation order
                tr = st.trials[st.order.ids[n]]
                if tr.overdue(now):
                    tr = tr.as_expired()
                    st.set_state(tr)
                    self._append(st, EXPIRE, tr, None, now)
                    out.append(tr)
            return out

    def expire_trial(self, study: str, trial_id: str, now: float) -> None:
        with self._lock:
            st = self._study(study)
            tr = require_trial(study, trial_id, st.trials.get(trial_id))
            if tr.state == PENDING:
                tr = tr.as_expired()
                st.set_state(tr)
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

    def trial_page(self, study: str, *, state: str | None = None, owner: str | None = None, after: int | None = None,
                   limit: int = 100, newest_first: bool = True) -> TrialPage:
        check_page(state, after, limit)
        with self._lock:
            st = self._study(study)
            ids, nxt = st.order.page(owner, state, after, limit, newest_first)
            return TrialPage([st.trials[t] for t in ids], nxt)

    def snapshot(self, study: str, version: str) -> Snapshot | None:
        with self._lock:
            return self._study(study).snapshots.get(version)

    def save_snapshot(self, study: str, snapshot: Snapshot) -> None:
        with self._lock:
            self._study(study).put_snapshot(snapshot)

    def import_events(self, study: str, events: Iterable[Event]) -> int:
        with self._lock:  # no other thread writes between the log's checks and its last event
            return super().import_events(study, events)

    def studies(self) -> list[str]:
        with self._lock:
            return list(self._studies)
