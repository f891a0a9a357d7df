"""Which events of a shared log a tuner has folded into its state, when writers commit out of order.

A tuner applies its own events as it makes them (a suggestion when it is chosen, a report when its commit
returns) and other processes' events when it reads the log. On SQLite and in memory the log is in commit order,
so "every event up to ``after``" is the whole story. On PostgreSQL no study-wide lock orders the writers: two
transactions may commit in the opposite order of their sequence numbers. There each event also records the id of
the transaction that wrote it, and a read returns the snapshot's *horizon* (``pg_snapshot_xmin``): every
transaction below it has ended, so every event it wrote is either visible now or never will be. The next read
asks for the events after ``after`` *or* written at or above the horizon; of those, the ones it has applied
already (``recent``, the events written at or above the horizon) are skipped. Nothing is applied twice and
nothing committed is missed, whatever the order of the commits.

:class:`LogFollower` keeps that bookkeeping; it does no I/O and takes no lock (its owner, the tuner, holds one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autorag_hp.storage.base import Event, LogRead


@dataclass
class _Own:
    """One of this process's events: ``applied`` (its effect is in the state), ``committed`` (its write returned),
    ``seen`` (a read returned it, so reads will skip it)."""

    applied: bool
    committed: bool = False
    seen: Event | None = None  # the event as a read returned it


class LogFollower:
    """The read position in a study's log and the events of this process that a read must not apply again."""

    def __init__(self) -> None:
        self.after = 0  # every event up to here that is in commit order is applied
        self.horizon: int | None = None  # PostgreSQL: the transaction id below which every event is applied
        self.recent: frozenset[int] = frozenset()  # applied events written at or above the horizon
        self.own: dict[tuple[str, str], _Own] = {}
        self.folded = 0  # events applied from reads or made here, for the snapshot schedule
        self.written = 0  # the highest sequence number of this process's own stored events

    # --- reads ------------------------------------------------------------------------------------------
    def take(self, read: LogRead) -> list[Event]:
        """The events of ``read`` (a :meth:`Storage.read_log` from this follower's position) not yet applied,
        in log order; the position moves past them. The caller applies them before the next read."""
        out = []
        for ev in read.events:
            if ev.seq in self.recent or (ev.seq <= self.after and read.horizon is None):
                continue
            mine = self.own.get((ev.kind, ev.trial_id))
            if mine is not None:
                mine.seen = ev
                if mine.applied:
                    del self.own[(ev.kind, ev.trial_id)]
                continue
            out.append(ev)
        if read.events:
            self.after = max(self.after, read.events[-1].seq)
        if read.horizon is not None:
            self.horizon = read.horizon if self.horizon is None else max(self.horizon, read.horizon)
            self.recent = read.sticky
        self.folded += len(out)
        return out

    # --- this process's own events ------------------------------------------------------------------------
    def claim(self, kind: str, trial_id: str, *, applied: bool) -> None:
        """Before writing an event: a read that returns it will skip it (``applied``: its effect is in the
        state already, as a suggestion's is from the moment it is chosen)."""
        self.own[(kind, trial_id)] = _Own(applied)

    def claimed(self, kind: str, trial_id: str) -> bool:
        """A write of this event by this process is in flight, or stored and not yet read back."""
        return (kind, trial_id) in self.own

    @property
    def last(self) -> int:
        """The highest sequence number among the events applied (read, or written here)."""
        return max(self.after, self.written)

    def committed(self, kind: str, trial_id: str, seq: int) -> None:
        """Its write returned (as event ``seq``) and its effect is in the state now."""
        self.written = max(self.written, seq)
        mine = self.own.get((kind, trial_id))
        if mine is None:
            return
        if mine.seen is not None:
            del self.own[(kind, trial_id)]
        else:
            mine.applied = mine.committed = True
        self.folded += 1

    def failed(self, kind: str, trial_id: str) -> Event | None:
        """Its write raised. The event if a read returned it all the same (the commit happened and only its
        answer was lost): then its effect must stay (or be applied). None: undo it; should it turn up in the log
        later, a read applies it as any other process's event."""
        mine = self.own.pop((kind, trial_id), None)
        return None if mine is None else mine.seen

    # --- snapshots ------------------------------------------------------------------------------------------
    def position(self, writing: tuple[str, str] | None = None) -> dict[str, Any] | None:
        """The position to store with a snapshot of the state, or None while the state holds the effect of an
        event whose write has not returned (other than ``writing``, the event the snapshot is written with) or
        misses one that a read has passed already: such a snapshot could not be restored exactly."""
        skip = []
        for key, mine in self.own.items():
            if mine.applied and not mine.committed and key != writing:
                return None
            if mine.seen is not None and not mine.applied:
                return None
            if mine.applied:
                skip.append(list(key))
        return {"after": self.after, "horizon": self.horizon, "recent": sorted(self.recent), "skip": sorted(skip)}

    def restore(self, pos: dict[str, Any]) -> None:
        """Continue from a snapshot's :meth:`position`: its own applied events are skipped when read."""
        self.after = int(pos["after"])
        self.horizon = None if pos["horizon"] is None else int(pos["horizon"])
        self.recent = frozenset(int(s) for s in pos["recent"])
        self.own = {(str(k), str(t)): _Own(True, True) for k, t in pos["skip"]}
