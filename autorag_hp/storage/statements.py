"""The SQL storage's hot-path statements, run at the driver level (no SQLAlchemy compilation per call).

Written with ``:name`` parameters (sqlite3's named style); :func:`for_dialect` converts them to ``%(name)s`` for
psycopg. SQLite runs a suggest or a report as a few statements inside ``BEGIN IMMEDIATE`` (the database's one
write lock, local and short). PostgreSQL runs each as **one** statement in autocommit, its steps chained by
data-modifying CTEs: one round trip, and no lock shared by the study's writers. Each event records the id of
the transaction that wrote it (``xid``), which is what lets a reader follow a log whose commits come out of
sequence order (:mod:`autorag_hp.fold`).
"""

from __future__ import annotations

import re

EVENT_COLUMNS = "seq, kind, trial_id, config, reward, info, time"

_COMMON = {
    # the aggregates are the log's (Storage.stats): computed when asked, so no write waits on an aggregate row
    "report_stats": "SELECT config, count(*), sum(reward), sum(reward * reward) FROM autorag_events "
    "WHERE study_id = :sid AND kind = 'report' GROUP BY config",
    "insert_event": "INSERT INTO autorag_events (study_id, kind, trial_id, config, reward, info, time) "
    "VALUES (:sid, :kind, :tid, :config, :reward, :info, :time) RETURNING seq",
    "insert_trial": "INSERT INTO autorag_trials (study_id, trial_id, n, config, config_id, info, state, created_at, "
    "expires_at, owner) VALUES (:sid, :tid, :n, :config, :cid, :info, 'pending', :created, :expires, :owner)",
    "get_trial": "SELECT trial_id, config, config_id, info, state, created_at, expires_at, reward, reported_at, owner "
    "FROM autorag_trials WHERE study_id = :sid AND trial_id = :tid",
    "put_snapshot": "INSERT INTO autorag_snapshots (study_id, version, seq, state, written_at) "
    "VALUES (:sid, :version, :seq, :state, :now) ON CONFLICT (study_id, version) DO UPDATE SET seq = excluded.seq, "
    "state = excluded.state, written_at = excluded.written_at WHERE autorag_snapshots.seq < excluded.seq",
    "get_snapshot": "SELECT seq, state FROM autorag_snapshots WHERE study_id = :sid AND version = :version",
    "mark_reported": "UPDATE autorag_trials SET state = 'reported', reward = :reward, reported_at = :now "
    "WHERE study_id = :sid AND trial_id = :tid",
    "events_after": f"SELECT {EVENT_COLUMNS} FROM autorag_events WHERE study_id = :sid AND seq > :after ORDER BY seq",
    "lock_study": "SELECT id FROM autorag_studies WHERE id = :sid FOR UPDATE",
    "trial_n": "SELECT n, created_at, config FROM autorag_trials WHERE study_id = :sid AND trial_id = :tid",
    "report_seq": "SELECT seq FROM autorag_events WHERE study_id = :sid AND trial_id = :tid AND kind = 'report'",
}

_XID = "pg_current_xact_id()::text::bigint"
_SNAP = (", put_snap AS (INSERT INTO autorag_snapshots (study_id, version, seq, state, written_at) "
         "SELECT :sid, :version, :seq, :state, :now FROM {after} ON CONFLICT (study_id, version) DO UPDATE SET "
         "seq = excluded.seq, state = excluded.state, written_at = excluded.written_at "
         "WHERE autorag_snapshots.seq < excluded.seq)")

_POSTGRES = {
    # the event, then the trial numbered by it; a duplicate trial id fails the whole statement
    "pg_suggest": "WITH ev AS (INSERT INTO autorag_events (study_id, kind, trial_id, config, reward, info, time, xid) "
    f"VALUES (:sid, 'suggest', :tid, :config, NULL, :info, :created, {_XID}) RETURNING seq){{snap}}, "
    "tr AS (INSERT INTO autorag_trials (study_id, trial_id, n, config, config_id, info, state, created_at, expires_at, "
    "owner) SELECT :sid, :tid, ev.seq, :config, :cid, :info, 'pending', :created, :expires, :owner FROM ev RETURNING n) "
    "SELECT n FROM tr",
    # only a pending trial within its deadline is reported: a second report (or one racing an expiry) waits for
    # the first's row lock, then finds the trial no longer pending and changes nothing
    "pg_report": "WITH t AS (UPDATE autorag_trials SET state = 'reported', reward = :reward, reported_at = :now "
    "WHERE study_id = :sid AND trial_id = :tid AND state = 'pending' AND (expires_at IS NULL OR expires_at >= :now) "
    "RETURNING trial_id, config, config_id, info, state, created_at, expires_at, reward, reported_at, owner), "
    "ev AS (INSERT INTO autorag_events (study_id, kind, trial_id, config, reward, info, time, xid) "
    f"SELECT :sid, 'report', trial_id, config, :reward, info, :now, {_XID} FROM t RETURNING seq){{snap}} "
    "SELECT ev.seq, t.* FROM ev, t",
    "pg_expire": "WITH t AS (UPDATE autorag_trials SET state = 'expired' WHERE study_id = :sid AND state = 'pending' "
    "AND expires_at < :now RETURNING trial_id, config, config_id, info, state, created_at, expires_at, reward, "
    "reported_at, owner, n), "
    "ev AS (INSERT INTO autorag_events (study_id, kind, trial_id, config, reward, info, time, xid) "
    f"SELECT :sid, 'expire', trial_id, config, NULL, info, :now, {_XID} FROM t ORDER BY n RETURNING seq) "
    "SELECT t.* FROM t ORDER BY n",
    # what a follower at (after, horizon) may not have seen, and, in the same snapshot, the new horizon
    "pg_read_log": f"SELECT {EVENT_COLUMNS}, xid FROM autorag_events WHERE study_id = :sid AND seq > :after "
    f"UNION SELECT {EVENT_COLUMNS}, xid FROM autorag_events WHERE study_id = :sid AND xid >= :horizon "
    "UNION ALL SELECT 0, '', '', '', NULL, '', 0, pg_snapshot_xmin(pg_current_snapshot())::text::bigint ORDER BY 1",
}


def for_dialect(dialect: str) -> dict[str, str]:
    """The statements in ``dialect``'s parameter style. PostgreSQL's writes come in two forms: ``NAME`` alone and
    ``NAME+snapshot`` with the snapshot's upsert chained in after its event (both built here, once)."""
    if dialect != "postgresql":
        return dict(_COMMON)
    out = dict(_COMMON)
    for name, sql in _POSTGRES.items():
        if "{snap}" in sql:
            out[name + "+snapshot"] = sql.replace("{snap}", _SNAP.format(after="ev"))
            sql = sql.replace("{snap}", "")
        out[name] = sql
    return {k: re.sub(r"(?<!:):(\w+)", r"%(\1)s", v) for k, v in out.items()}
