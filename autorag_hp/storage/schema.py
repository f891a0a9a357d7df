"""The SQL storage's tables (SQLite and PostgreSQL alike) and the migration of an older database to them.

* ``autorag_studies``: one row per study (name, space fingerprint, meta).
* ``autorag_events``: the append-only log, the source of truth (:mod:`autorag_hp.storage.base`).
* ``autorag_trials``: each trial's current state (derived from the log, plus its owner), with the indexes the
  expiry sweep and the keyset listings read.
(Schema 2 had ``autorag_stats``, per-configuration aggregates updated with each report: every report of a
configuration waited on its row. They are now computed from the log when asked; an older database keeps the
table, unused.)
* ``autorag_snapshots``: the tuners' folded state at some event, per study and version (start-up reads the
  newest one and the events after it instead of the whole log).
"""

from __future__ import annotations

import sqlalchemy as sa

# 2: trials record their owner (the client that asked), indexes serve keyset listings, snapshots of the fold.
# 3: events record the id of the transaction that wrote them (PostgreSQL; NULL on SQLite and for older rows),
#    so that writers need no shared lock (autorag_hp.fold).
# An older database gains them when it is opened (:func:`migrate`); its trials have no owner.
SCHEMA_VERSION = 3
metadata = sa.MetaData()
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

studies_t = sa.Table(
    "autorag_studies",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("fingerprint", sa.String(32), nullable=False),
    sa.Column("meta", sa.Text, nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False, default=SCHEMA_VERSION),
)
events_t = sa.Table(
    "autorag_events",
    metadata,
    sa.Column("seq", _BigId, primary_key=True, autoincrement=True),
    sa.Column("study_id", sa.BigInteger, sa.ForeignKey("autorag_studies.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("trial_id", sa.String(64), nullable=False),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("reward", sa.Float, nullable=True),
    sa.Column("info", sa.Text, nullable=False),
    sa.Column("time", sa.Float, nullable=False),
    sa.Column("xid", sa.BigInteger, nullable=True),  # schema 3: pg_current_xact_id() of the writer (PostgreSQL)
    sa.Index("autorag_events_xid", "study_id", "xid"),
    # a follower's read (``study_id = ? AND seq > ?``) walks only the new entries: with an index on study_id
    # alone PostgreSQL intersected every entry of the study with the seq range, 2 ms per read at 4,400 events
    sa.Index("autorag_events_study_seq", "study_id", "seq"),
    sqlite_autoincrement=True,
)


def _per_study(name: str, *columns) -> sa.Table:
    """A table whose primary key starts with the study's id (trials, aggregates, snapshots)."""
    return sa.Table(name, metadata,
                    sa.Column("study_id", sa.BigInteger, sa.ForeignKey("autorag_studies.id"), primary_key=True),
                    *columns)


trials_t = _per_study(
    "autorag_trials",
    sa.Column("trial_id", sa.String(64), primary_key=True),
    sa.Column("n", _BigId, nullable=False),  # creation order within the storage
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("config_id", sa.String(32), nullable=False),
    sa.Column("info", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=True),
    sa.Column("reward", sa.Float, nullable=True),
    sa.Column("reported_at", sa.Float, nullable=True),
    sa.Column("owner", sa.String(200), nullable=True),  # schema 2: the client that asked (None: unknown)
    sa.Index("autorag_trials_pending", "study_id", "state", "expires_at"),
    # keyset listings (trial_page): one index range per state, merged; no scan of the history
    sa.Index("autorag_trials_state_n", "study_id", "state", "n"),
    sa.Index("autorag_trials_owner_state_n", "study_id", "owner", "state", "n"),
)
snapshots_t = _per_study(
    "autorag_snapshots",
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("written_at", sa.Float, nullable=False),
)
TRIAL_COLUMNS = "trial_id, config, config_id, info, state, created_at, expires_at, reward, reported_at, owner"


def migrate(conn) -> None:
    """Bring an older database to this schema (idempotent; run under create_schema's lock): the trials'
    ``owner`` column, the events' ``xid`` column and the indexes. Creating an index on a large existing table takes
    a while, once."""
    insp = sa.inspect(conn)
    for table, column, sql_type in (("autorag_trials", "owner", "VARCHAR(200)"), ("autorag_events", "xid", "BIGINT")):
        if column not in {c["name"] for c in insp.get_columns(table)}:
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")
    for table in (trials_t, events_t):
        have = {ix["name"] for ix in insp.get_indexes(table.name)}
        for index in sorted(table.indexes, key=lambda ix: ix.name or ""):
            if index.name is not None and index.name not in have:  # asked only when missing: CREATE INDEX waits for writers
                index.create(conn)
