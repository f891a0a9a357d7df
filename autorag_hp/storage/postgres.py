"""PostgreSQL storage: the SQL storage with its writes as single statements and no lock shared by a study's writers.

A suggestion, a report and an expiry sweep are one statement each (data-modifying CTEs, :mod:`.statements`),
committed by themselves in autocommit: one round trip, and nothing that other replicas of the study wait for but
the row of the configuration a report adds to (held for part of that statement) and, of course, the trial's own row.
Two writers may therefore commit in the opposite order of their sequence numbers; each event records its
transaction's id and :meth:`PostgresStorage.read_log` returns the horizon a reader follows the log by
(:mod:`autorag_hp.fold`). Reads and the other operations are the SQL storage's.
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa

from autorag_hp.errors import DuplicateTrialError
from autorag_hp.storage.base import REPORTED, Event, LogRead, Snapshot, TrialRecord, check_report
from autorag_hp.storage.sql import SQLStorage
from autorag_hp.storage.urls import open_engine


class PostgresStorage(SQLStorage):
    """``postgresql://user@host/db`` (``SQLStorage(url)`` with such a URL makes one of these).

    Writes go through pools of their own in autocommit, without the ping before each use: a statement that fails
    because the server dropped the pooled connection is sent once more on a fresh one, after checking that the
    first one did not commit (then it counts once).

    Durability. A report (and an expiry) returns once it is flushed to disk. A suggestion returns once it is
    committed, visible to every reader, and is flushed by PostgreSQL's WAL writer within ``wal_writer_delay``
    (200 ms by default; at most three times that), or at once by the next report or other synchronous commit,
    which flushes everything before it. So a crash of the PostgreSQL *server* (not of a replica) can lose the
    suggestions of the last fraction of a second: their feedback is then refused as an unknown trial, and no
    acknowledged reward is ever lost. The flush is what a synchronous commit waits for (4 ms here, against 0.2 ms
    without); ``durable_suggest=True`` waits for it on suggestions too."""

    def __init__(self, url: str, *, echo: bool = False, durable_suggest: bool = False, **kwargs: Any):
        super().__init__(url, echo=echo, **kwargs)
        self._auto = open_engine(self.engine.url, echo=echo, pool_pre_ping=False).execution_options(
            isolation_level="AUTOCOMMIT")
        self._auto_suggest = self._auto if durable_suggest else open_engine(
            self.engine.url, echo=echo, pool_pre_ping=False,
            connect_args={"options": "-c synchronous_commit=off"}).execution_options(isolation_level="AUTOCOMMIT")

    def _pg(self, name: str, params: dict[str, Any], snapshot: Snapshot | None = None,
            landed: Any = None) -> list[tuple]:
        """Run one hot-path statement by itself and return its rows. If the server dropped the pooled connection,
        ``landed()`` (for a write) tells whether it committed all the same (its rows, or None); if not, it is sent
        once more on a fresh connection. A write's duration bounds how long a lock it took was held."""
        sql = self._sql[name if snapshot is None else name + "+snapshot"]
        if snapshot is not None:
            params = {**params, "version": snapshot.version, "seq": int(snapshot.seq), "state": snapshot.state,
                      "now": params.get("now", time.time())}
        engine = self._auto_suggest if name == "pg_suggest" else self._auto
        for attempt in (0, 1):
            try:
                with engine.connect() as conn:
                    t0 = time.perf_counter()
                    rows = conn.exec_driver_sql(sql, params).fetchall()
                    if name != "pg_read_log":
                        self._held.observe(time.perf_counter() - t0)
                    return rows
            except sa.exc.DBAPIError as exc:
                if attempt or not exc.connection_invalidated:
                    raise
                rows = None if landed is None else landed()
                if rows is not None:
                    return rows
        raise AssertionError("unreachable")  # pragma: no cover

    def _lookup(self, name: str, params: dict[str, Any]):
        with self._read() as conn:
            row = self._x(conn, name, params).fetchone()
            conn.rollback()
        return row

    def suggest(self, study: str, trial: TrialRecord, snapshot: Snapshot | None = None) -> int:
        params = {"sid": self._study_id(study), "tid": trial.trial_id, "config": trial.config, "cid": trial.config_id,
                  "info": json.dumps(trial.info, sort_keys=True), "created": trial.created_at,
                  "expires": trial.expires_at, "owner": trial.owner}

        def landed():  # this very suggestion, committed before its connection was dropped?
            row = self._lookup("trial_n", params)
            return [row[:1]] if row is not None and (row[1], row[2]) == (trial.created_at, trial.config) else None

        try:
            return int(self._pg("pg_suggest", params, snapshot, landed)[0][0])
        except sa.exc.IntegrityError as exc:
            raise DuplicateTrialError(f"trial id {trial.trial_id!r} already exists in study {study!r}") from exc

    def report(self, study: str, trial_id: str, reward: float, now: float,
               snapshot: Snapshot | None = None) -> tuple[int, TrialRecord]:
        params = {"sid": self._study_id(study), "tid": trial_id, "reward": reward, "r2": reward * reward, "now": now}

        def landed():  # this very report, committed before its connection was dropped?
            tr = self.trial(study, trial_id)
            if not (tr.state == REPORTED and tr.reward == reward and tr.reported_at == now):
                return None
            return [(self._lookup("report_seq", params)[0], *tr)]

        rows = self._pg("pg_report", params, snapshot, landed)
        if rows:
            seq, *raw = rows[0]
            info = raw[3] if isinstance(raw[3], dict) else json.loads(raw[3])
            return int(seq), TrialRecord(*raw[:3], info, *raw[4:10])
        check_report(study, trial_id, self.trial(study, trial_id), now)  # not stored: say why, as every backend does
        raise AssertionError(f"trial {trial_id!r} is pending but was not reported")  # pragma: no cover

    def expire(self, study: str, now: float) -> list[TrialRecord]:
        rows = self._pg("pg_expire", {"sid": self._study_id(study), "now": now})
        return [TrialRecord(*r[:3], json.loads(r[3]), *r[4:10]) for r in rows]

    def read_log(self, study: str, after: int = 0, horizon: int | None = None) -> LogRead:
        rows = self._pg("pg_read_log", {"sid": self._study_id(study), "after": after, "horizon": horizon or 0})
        top = int(rows[0][7])  # the sentinel row (seq 0): every writer below this transaction id has ended
        events = [Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows[1:]]
        return LogRead(events, top, frozenset(r[0] for r in rows[1:] if r[7] is not None and r[7] >= top))

    def close(self) -> None:
        self._auto.engine.dispose()
        self._auto_suggest.engine.dispose()
        super().close()
