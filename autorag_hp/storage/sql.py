"""SQL storage through SQLAlchemy: a SQLite file (the embedded default, WAL mode) or PostgreSQL by URL.

>>> st = SQLStorage("sqlite://")          # in-memory SQLite, for a quick look
>>> st.studies()
[]
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event

from autorag_hp.errors import DuplicateTrialError, InvalidStorageError, UnknownStudyError
from autorag_hp.space import Config, SearchSpace
from autorag_hp.storage.base import (
    EXPIRE,
    EXPIRED,
    PENDING,
    REPORT,
    SUGGEST,
    TRIAL_STATES,
    Event,
    HeldTimer,
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
from autorag_hp.storage.schema import (
    SCHEMA_VERSION,
    TRIAL_COLUMNS,
    metadata,
    migrate,
    studies_t,
    trials_t,
)
from autorag_hp.storage.statements import for_dialect
from autorag_hp.storage.urls import create_schema, database_url, open_engine


class SQLStorage(Storage):
    """SQLite (``sqlite:///path.db``) or PostgreSQL (``postgresql://user@host/db``) storage.

    ``sqlite_synchronous``: ``"NORMAL"`` (default; committed data survives a killed process) or ``"FULL"``
    (survives power loss as well, at the cost of an fsync per commit).

    A PostgreSQL URL makes a :class:`~autorag_hp.storage.postgres.PostgresStorage`, whose writes share no lock.
    """

    def __new__(cls, url: str, **kwargs: Any):
        if cls is SQLStorage and isinstance(url, str) and url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres"):
            from autorag_hp.storage.postgres import PostgresStorage

            return super().__new__(PostgresStorage)
        return super().__new__(cls)

    def __init__(self, url: str, *, sqlite_synchronous: str = "NORMAL", echo: bool = False):
        self.url = url
        url = database_url(url)
        self.dialect = sa.engine.make_url(url).get_backend_name()

        def _on_connect(dbapi_conn) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            dbapi_conn.execute("PRAGMA foreign_keys=ON")

        try:
            self.engine = open_engine(url, synchronous=sqlite_synchronous, shared_across_threads=True,
                                      on_connect=_on_connect, echo=echo)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
            raise InvalidStorageError(f"cannot use storage URL {self.url!r}: {exc}") from None
        if self.dialect == "sqlite":
            @sa_event.listens_for(self.engine, "begin")
            def _on_begin(conn):
                if conn.get_execution_options().get("autorag_readonly"):
                    conn.exec_driver_sql("BEGIN")  # readers see a snapshot and never block writers (WAL)
                else:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")  # one writer at a time, taken up front: no deadlocks

        self._sql = for_dialect(self.dialect)
        if self.dialect == "postgresql":
            import psycopg

            self._integrity_errors: tuple[type[BaseException], ...] = (psycopg.errors.IntegrityError,)
        else:
            import sqlite3

            self._integrity_errors = (sqlite3.IntegrityError,)
        self._ids: dict[str, int] = {}
        self._ids_lock = threading.Lock()
        self._held = HeldTimer()
        create_schema(self.engine, metadata, migrate)  # several replicas may start at once on a fresh database

    # --- helpers ----------------------------------------------------------------------------------------
    def _read(self):
        return self.engine.connect().execution_options(autorag_readonly=True)

    def _sid(self, conn, study: str) -> int:
        sid = self._ids.get(study)
        if sid is None:
            sid = conn.execute(sa.select(studies_t.c.id).where(studies_t.c.name == study)).scalar()
            if sid is None:
                raise UnknownStudyError(f"no study named {study!r} in {self.url}; open it first")
            with self._ids_lock:
                self._ids[study] = sid
        return sid

    def _study_id(self, study: str) -> int:
        """The study's id, from the cache (no round trip) once it is known."""
        sid = self._ids.get(study)
        if sid is None:
            with self._read() as conn:
                sid = self._sid(conn, study)
                conn.rollback()
        return sid

    def _x(self, conn, name: str, params: dict[str, Any]):
        """Run a hot-path statement on the raw driver cursor (bypassing SQLAlchemy's result machinery)."""
        cur = conn.connection.dbapi_connection.cursor()
        cur.execute(self._sql[name], params)
        return cur

    def _event(self, conn, sid: int, kind: str, tr: TrialRecord, reward, info_json: str, now: float) -> int:
        cur = self._x(
            conn, "insert_event",
            {"sid": sid, "kind": kind, "tid": tr.trial_id, "config": tr.config, "reward": reward, "info": info_json, "time": now},
        )
        return int(cur.fetchone()[0])

    def _put_snapshot(self, conn, sid: int, snapshot: Snapshot | None) -> None:
        if snapshot is not None:
            self._x(conn, "put_snapshot", {"sid": sid, "version": snapshot.version, "seq": int(snapshot.seq),
                                            "state": snapshot.state, "now": time.time()})

    @staticmethod
    def _trial(row) -> TrialRecord:
        return TrialRecord(
            trial_id=row.trial_id,
            config=row.config,
            config_id=row.config_id,
            info=json.loads(row.info),
            state=row.state,
            created_at=row.created_at,
            expires_at=row.expires_at,
            reward=row.reward,
            reported_at=row.reported_at,
            owner=row.owner,
        )

    # --- the contract -----------------------------------------------------------------------------------
    def open_study(self, name: str, space: SearchSpace, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        full = {"name": name, "fingerprint": space.fingerprint, "space": space.to_dict(), **(meta or {})}
        for _attempt in range(3):
            with self.engine.begin() as conn:
                row = conn.execute(sa.select(studies_t).where(studies_t.c.name == name)).first()
                if row is None:
                    try:
                        with conn.begin_nested():
                            conn.execute(
                                studies_t.insert().values(
                                    name=name, fingerprint=space.fingerprint, meta=json.dumps(full), schema_version=SCHEMA_VERSION
                                )
                            )
                    except sa.exc.IntegrityError:
                        continue  # created concurrently by another process: read it again
                    return full
                check_space(name, self.url, row.fingerprint, space)
                return json.loads(row.meta)
        raise RuntimeError(f"could not open study {name!r}")  # pragma: no cover

    def study_meta(self, name: str) -> dict[str, Any]:
        with self._read() as conn:
            meta = conn.execute(sa.select(studies_t.c.meta).where(studies_t.c.name == name)).scalar()
            conn.rollback()
        if meta is None:
            raise UnknownStudyError(f"no study named {name!r} in {self.url}")
        return json.loads(meta)

    def suggest(self, study: str, trial: TrialRecord, snapshot: Snapshot | None = None) -> int:
        info_json = json.dumps(trial.info, sort_keys=True)
        params = {"tid": trial.trial_id, "n": 0, "config": trial.config, "cid": trial.config_id, "info": info_json,
                  "created": trial.created_at, "expires": trial.expires_at, "owner": trial.owner}
        with self.engine.begin() as conn:
            sid = params["sid"] = self._sid(conn, study)
            locked = time.perf_counter()
            seq = params["n"] = self._event(conn, sid, SUGGEST, trial, None, info_json, trial.created_at)
            try:
                self._x(conn, "insert_trial", params)
            except (sa.exc.IntegrityError, *self._integrity_errors) as exc:
                raise DuplicateTrialError(f"trial id {trial.trial_id!r} already exists in study {study!r}") from exc
            self._put_snapshot(conn, sid, snapshot)
        self._held.observe(time.perf_counter() - locked)  # from BEGIN IMMEDIATE's lock to the commit that frees it
        return seq

    def report(self, study: str, trial_id: str, reward: float, now: float,
               snapshot: Snapshot | None = None) -> tuple[int, TrialRecord]:
        with self.engine.begin() as conn:
            sid = self._sid(conn, study)
            locked = time.perf_counter()
            raw = self._x(conn, "get_trial", {"sid": sid, "tid": trial_id}).fetchone()
            found = None if raw is None else TrialRecord(*raw[:3], json.loads(raw[3]), *raw[4:])
            tr = check_report(study, trial_id, found, now).as_reported(reward, now)
            self._x(conn, "mark_reported", {"reward": reward, "now": now, "sid": sid, "tid": trial_id})
            seq = self._event(conn, sid, REPORT, tr, reward, raw[3], now)
            self._put_snapshot(conn, sid, snapshot)
        self._held.observe(time.perf_counter() - locked)
        return seq, tr

    def expire(self, study: str, now: float) -> list[TrialRecord]:
        with self.engine.begin() as conn:
            sid = self._sid(conn, study)
            rows = conn.execute(
                sa.select(trials_t)
                .where(trials_t.c.study_id == sid, trials_t.c.state == PENDING, trials_t.c.expires_at < now)
                .order_by(trials_t.c.n)
            ).all()
            out = []
            for row in rows:
                tr = self._trial(row).as_expired()
                conn.execute(
                    trials_t.update()
                    .where(trials_t.c.study_id == sid, trials_t.c.trial_id == row.trial_id)
                    .values(state=EXPIRED)
                )
                self._event(conn, sid, EXPIRE, tr, None, row.info, now)
                out.append(tr)
            return out

    def expire_trial(self, study: str, trial_id: str, now: float) -> None:
        with self.engine.begin() as conn:
            sid = self._sid(conn, study)
            row = conn.execute(
                sa.select(trials_t).where(trials_t.c.study_id == sid, trials_t.c.trial_id == trial_id)
            ).first()
            if require_trial(study, trial_id, None if row is None else self._trial(row)).state == PENDING:
                done = conn.execute(  # only if still pending: a report racing it on PostgreSQL wins or loses whole
                    trials_t.update()
                    .where(trials_t.c.study_id == sid, trials_t.c.trial_id == trial_id, trials_t.c.state == PENDING)
                    .values(state=EXPIRED)
                )
                if done.rowcount == 1:
                    self._event(conn, sid, EXPIRE, self._trial(row), None, row.info, now)

    def events(self, study: str, after: int = 0, limit: int | None = None) -> list[Event]:
        with self._read() as conn:
            sid = self._sid(conn, study)
            sql = self._sql["events_after"]
            if limit is not None:
                sql += f" LIMIT {int(limit)}"
            cur = conn.connection.dbapi_connection.cursor()
            cur.execute(sql, {"sid": sid, "after": after})
            rows = cur.fetchall()
            conn.rollback()
        return [Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]

    def stats(self, study: str) -> dict[str, Stat]:
        with self._read() as conn:
            sid = self._sid(conn, study)
            rows = conn.exec_driver_sql(self._sql["report_stats"], {"sid": sid}).all()
            conn.rollback()
        return {Config.from_json(r[0]).id: Stat(r[0], int(r[1]), float(r[2]), float(r[3])) for r in rows}

    def trial(self, study: str, trial_id: str) -> TrialRecord:
        with self._read() as conn:
            sid = self._sid(conn, study)
            row = conn.execute(
                sa.select(trials_t).where(trials_t.c.study_id == sid, trials_t.c.trial_id == trial_id)
            ).first()
            conn.rollback()
        return require_trial(study, trial_id, None if row is None else self._trial(row))

    def trials(self, study: str, state: str | None = None) -> list[TrialRecord]:
        with self._read() as conn:
            sid = self._sid(conn, study)
            q = sa.select(trials_t).where(trials_t.c.study_id == sid).order_by(trials_t.c.n)
            if state is not None:
                q = q.where(trials_t.c.state == state)
            rows = conn.execute(q).all()
            conn.rollback()
        return [self._trial(r) for r in rows]

    def trial_page(self, study: str, *, state: str | None = None, owner: str | None = None, after: int | None = None,
                   limit: int = 100, newest_first: bool = True) -> TrialPage:
        check_page(state, after, limit)
        op, direction = ("<", "DESC") if newest_first else (">", "ASC")
        where = "study_id = :sid AND state = :state_{i}"
        params: dict[str, Any] = {"k": limit + 1}
        if owner is not None:
            where += " AND owner = :owner"
            params["owner"] = owner
        if after is not None:
            where += f" AND n {op} :after"
            params["after"] = after
        # one index range per state (autorag_trials_state_n / _owner_state_n), each cut at the page's length and
        # merged: the same few rows read at any history length, whichever filters apply
        states = TRIAL_STATES if state is None else (state,)
        parts = [f"SELECT * FROM (SELECT n, {TRIAL_COLUMNS} FROM autorag_trials WHERE {where.format(i=i)} "
                 f"ORDER BY n {direction} LIMIT :k) AS part_{i}" for i in range(len(states))]
        sql = " UNION ALL ".join(parts) + f" ORDER BY n {direction} LIMIT :k"
        with self._read() as conn:
            params["sid"] = self._sid(conn, study)
            params.update({f"state_{i}": s for i, s in enumerate(states)})
            rows = conn.execute(sa.text(sql), params).all()
            conn.rollback()
        more = len(rows) > limit
        rows = rows[:limit]
        return TrialPage([self._trial(r) for r in rows], int(rows[-1].n) if more else None)

    def snapshot(self, study: str, version: str) -> Snapshot | None:
        with self._read() as conn:
            sid = self._sid(conn, study)
            row = self._x(conn, "get_snapshot", {"sid": sid, "version": version}).fetchone()
            conn.rollback()
        return None if row is None else Snapshot(version, int(row[0]), row[1])

    def save_snapshot(self, study: str, snapshot: Snapshot) -> None:
        with self.engine.begin() as conn:
            self._put_snapshot(conn, self._sid(conn, study), snapshot)

    def lock_held(self) -> dict[str, float]:
        return self._held.summary()

    def studies(self) -> list[str]:
        with self._read() as conn:
            names = list(conn.execute(sa.select(studies_t.c.name).order_by(studies_t.c.id)).scalars())
            conn.rollback()
        return names

    def close(self) -> None:
        self.engine.dispose()
