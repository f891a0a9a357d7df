"""The one place a database location becomes an SQLAlchemy URL (the tuner's storage, grid tables, Optuna), and
where the tuner's storage and the grid tables open their engine (:func:`open_engine`) and create their tables
(:func:`create_schema`, safe when several processes start at once on a fresh database).

* ``postgresql://`` / ``postgres://`` get the psycopg 3 driver (``postgresql+psycopg://``), the driver we
  install; when only psycopg2 is importable they are left to SQLAlchemy's default (psycopg2).
* URLs with an explicit driver (``postgresql+psycopg2://``), ``sqlite://`` and any other scheme pass unchanged.
* With ``paths=True`` a plain path (``grid.sqlite``) becomes ``sqlite:///<absolute path>``, its folder created.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autorag_hp.errors import InvalidStorageError

_POSTGRES = ("postgresql://", "postgres://")


def database_url(target: str | os.PathLike, *, paths: bool = False) -> str:
    """``target`` as an SQLAlchemy URL (see the module docstring)."""
    s = str(target)
    if s.startswith(_POSTGRES):
        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            return s
        return "postgresql+psycopg://" + s.split("://", 1)[1]
    if "://" in s or not paths:
        return s
    Path(s).parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(s).resolve()}"


def open_engine(url: str, *, synchronous: str = "NORMAL", shared_across_threads: bool = False,
                pool_per_connection: bool = False, on_connect: Any = None, **kwargs: Any):
    """An SQLAlchemy engine for ``url`` (already a :func:`database_url`) as autorag-hp's stores want it.

    SQLite: WAL (readers never block the writer), ``PRAGMA synchronous`` (``NORMAL`` survives a killed process,
    ``FULL`` also a power loss) and a 60 s busy timeout, so concurrent processes wait instead of failing;
    ``shared_across_threads`` lets one connection serve several threads (an in-memory database keeps one);
    ``pool_per_connection`` opens a fresh connection each time (several processes writing one file).
    PostgreSQL: connections are checked before use (a restarted server is not an error) unless
    ``pool_pre_ping=False`` (the caller then retries a statement on a dropped connection itself). Each pool keeps
    8 connections (the service's worker threads, :data:`autorag_hp.service.app.WORKER_THREADS`) plus 4 it closes
    after use: a connection opened per statement costs the server a process start, and made 1 in 6 of a loaded
    replica's requests wait for one. ``on_connect(dbapi
    connection)`` runs after the pragmas, for a store's own settings; other keywords go to ``create_engine``.
    """
    import sqlalchemy as sa

    sync = synchronous.upper()
    if sync not in ("NORMAL", "FULL", "OFF"):
        raise InvalidStorageError(f"sqlite_synchronous must be NORMAL, FULL or OFF, got {synchronous!r}")
    sqlite = sa.engine.make_url(url).get_backend_name() == "sqlite"
    kwargs.setdefault("future", True)
    if sqlite:
        kwargs["connect_args"] = {"timeout": 60, **({"check_same_thread": False} if shared_across_threads else {})}
        if sa.engine.make_url(url).database in (None, "", ":memory:"):
            kwargs["poolclass"] = sa.pool.StaticPool
        elif pool_per_connection:
            kwargs["poolclass"] = sa.pool.NullPool
    else:
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_size", 8)
        kwargs.setdefault("max_overflow", 4)
    engine = sa.create_engine(url, **kwargs)
    if sqlite:
        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.close()
            if on_connect is not None:
                on_connect(dbapi_conn)
    return engine


def create_schema(engine, metadata, migrate: Callable[[Any], None] | None = None, *, attempts: int = 8) -> None:
    """Create ``metadata``'s missing tables, then run ``migrate(connection)`` (in the same transaction), safely
    when several processes do it at once on a fresh database.

    PostgreSQL: under a transaction-scoped advisory lock (one key per set of tables), so the second process
    waits and then finds the tables (without it, two concurrent ``CREATE TABLE`` race in the catalog:
    ``UniqueViolation ... pg_type_typname_nsp_index``). SQLite: create-if-not-exists, retried with a growing
    pause when another process created a table between the check and the create, or held the lock. Either
    way an error that persists through ``attempts`` is raised.
    """
    import sqlalchemy as sa

    names = "\x00".join(sorted(metadata.tables))
    key = int.from_bytes(hashlib.sha256(f"autorag_hp.schema\x00{names}".encode()).digest()[:8], "big", signed=True)
    postgres = engine.dialect.name == "postgresql"
    for attempt in range(attempts):
        try:
            with engine.begin() as conn:
                if postgres:
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
                metadata.create_all(conn, checkfirst=True)
                if migrate is not None:
                    migrate(conn)
            return
        except (sa.exc.OperationalError, sa.exc.IntegrityError, sa.exc.ProgrammingError):
            # "table ... already exists" / "database is locked" (SQLite), a catalog race with a process that
            # took no lock (PostgreSQL): look again
            if attempt == attempts - 1:
                raise
            time.sleep(min(0.05 * 2**attempt, 1.0))
