"""One suite every storage backend passes: memory, SQLite (file, WAL) and PostgreSQL."""

import math
import multiprocessing as mp
import threading
import uuid

import pytest

from autorag_hp import (
    SearchSpace,
    StorageMismatchError,
    TrialAlreadyReportedError,
    TrialExpiredError,
    UnknownTrialError,
)
from autorag_hp.errors import (
    AutoRAGHPError,
    DuplicateTrialError,
    InvalidEventLogError,
    InvalidStorageError,
    UnknownStudyError,
)
from autorag_hp.storage import (
    EXPIRED,
    PENDING,
    REPORTED,
    Event,
    MemoryStorage,
    Stat,
    TrialRecord,
    open_storage,
)
from autorag_hp.storage.base import Snapshot, TrialPage, stats_from_events

SPACE = SearchSpace({"top_k": [1, 3, 5], "prompt": ["a", "b"]})


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request, tmp_path, unique_name):
    """(storage, study name, url or None) for each backend."""
    if request.param == "memory":
        st, url = MemoryStorage(), None
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        st = open_storage(url)
    else:
        url = request.getfixturevalue("pg_url")
        st = open_storage(url)
    st.open_study(unique_name, SPACE, {"policy": "test"})
    yield st, unique_name, url
    st.close()


def _trial(i, cfg_index=0, expires=None, now=100.0, owner=None):
    cfg = SPACE.config_at(cfg_index)
    return TrialRecord(f"tr{i}", cfg.to_json(), cfg.id, {"decision": i}, PENDING, now, expires, owner=owner)


def test_suggest_report_events_and_stats(backend):
    st, study, _ = backend
    s1 = st.suggest(study, _trial(1, 0))
    s2 = st.suggest(study, _trial(2, 0))
    s3 = st.suggest(study, _trial(3, 4))
    assert s1 < s2 < s3
    seq, tr = st.report(study, "tr2", 0.5, 101.0)
    assert seq > s3 and tr.state == REPORTED and tr.reward == 0.5 and tr.info == {"decision": 2}
    st.report(study, "tr1", -0.25, 102.0)
    st.report(study, "tr3", 1.0, 103.0)
    evs = st.events(study)
    assert [e.kind for e in evs] == ["suggest"] * 3 + ["report"] * 3
    assert [e.trial_id for e in evs[3:]] == ["tr2", "tr1", "tr3"]
    assert [e.seq for e in evs] == sorted(e.seq for e in evs)
    assert st.events(study, after=evs[3].seq)[0].trial_id == "tr1"
    assert len(st.events(study, after=0, limit=2)) == 2
    stats = st.stats(study)
    c0, c4 = SPACE.config_at(0).id, SPACE.config_at(4).id
    assert stats[c0] == Stat(SPACE.config_at(0).to_json(), 2, 0.25, 0.3125)
    assert stats[c4].count == 1 and stats[c4].mean == 1.0
    assert st.trial(study, "tr1").reward == -0.25
    assert [t.trial_id for t in st.trials(study)] == ["tr1", "tr2", "tr3"]
    assert st.trials(study, state=PENDING) == []


def test_second_report_and_unknown_trial_change_nothing(backend):
    st, study, _ = backend
    st.suggest(study, _trial(1))
    st.report(study, "tr1", 0.5, 101.0)
    before = (st.events(study), st.stats(study), st.trials(study))
    with pytest.raises(TrialAlreadyReportedError, match="already reported"):
        st.report(study, "tr1", 0.9, 102.0)
    with pytest.raises(UnknownTrialError, match="unknown trial id 'nope'"):
        st.report(study, "nope", 0.9, 102.0)
    with pytest.raises(UnknownTrialError):
        st.trial(study, "nope")
    with pytest.raises(ValueError, match="already exists"):
        st.suggest(study, _trial(1))
    assert (st.events(study), st.stats(study), st.trials(study)) == before


def test_the_same_misuse_raises_the_same_typed_error_in_every_backend(backend):
    st, study, _ = backend
    st.suggest(study, _trial(1))
    st.suggest(study, _trial(2, expires=105.0))
    st.report(study, "tr1", 0.5, 101.0)
    st.expire(study, 106.0)
    before = (st.events(study), st.stats(study), st.trials(study))
    report_before_suggest = [Event(1, "report", "tr9", SPACE.config_at(0).to_json(), 1.0, {}, 101.0)]
    misuse = [
        (UnknownTrialError, "unknown trial id 'nope'", lambda: st.report(study, "nope", 0.9, 107.0)),
        (UnknownTrialError, "unknown trial id 'nope'", lambda: st.trial(study, "nope")),
        (TrialAlreadyReportedError, "already reported", lambda: st.report(study, "tr1", 0.9, 107.0)),
        (TrialExpiredError, "expired", lambda: st.report(study, "tr2", 0.9, 107.0)),  # swept, then reported
        (DuplicateTrialError, "'tr1' already exists", lambda: st.suggest(study, _trial(1))),
        (DuplicateTrialError, "imported before", lambda: st.import_events(study, st.events(study))),
        (InvalidEventLogError, "before its suggestion", lambda: st.import_events(study, report_before_suggest)),
    ]
    for error, message, call in misuse:
        with pytest.raises(error, match=message) as info:
            call()
        assert isinstance(info.value, AutoRAGHPError)
    assert (st.events(study), st.stats(study), st.trials(study)) == before


def test_a_study_never_opened_is_an_unknown_study_error(backend):
    st, study, _ = backend
    st.suggest(study, _trial(1))
    log = st.events(study)
    missing = study + "_never_opened"
    calls = {
        "suggest": lambda: st.suggest(missing, _trial(1)),
        "report": lambda: st.report(missing, "tr1", 0.5, 101.0),
        "expire": lambda: st.expire(missing, 101.0),
        "expire_trial": lambda: st.expire_trial(missing, "tr1", 101.0),
        "events": lambda: st.events(missing),
        "stats": lambda: st.stats(missing),
        "trial": lambda: st.trial(missing, "tr1"),
        "trials": lambda: st.trials(missing),
        "import_events": lambda: st.import_events(missing, log),
        "trial_page": lambda: st.trial_page(missing),
        "snapshot": lambda: st.snapshot(missing, "v"),
        "save_snapshot": lambda: st.save_snapshot(missing, Snapshot("v", 1, "{}")),
        "study_meta": lambda: st.study_meta(missing),
        "read_log": lambda: st.read_log(missing),
    }
    for name, call in calls.items():
        with pytest.raises(UnknownStudyError, match=f"no study named '{missing}'") as info:
            call()
        assert isinstance(info.value, KeyError), name  # still a KeyError, as before it was typed
    assert missing not in st.studies() and st.events(study) == log


def test_expiry(backend):
    st, study, _ = backend
    st.suggest(study, _trial(1, expires=110.0))
    st.suggest(study, _trial(2, expires=130.0))
    st.suggest(study, _trial(3))  # never expires
    with pytest.raises(TrialExpiredError):
        st.report(study, "tr1", 1.0, 111.0)  # overdue: rejected even before a sweep
    assert st.trial(study, "tr1").state == PENDING  # ... and the rejection wrote nothing
    out = st.expire(study, 120.0)
    assert [t.trial_id for t in out] == ["tr1"]
    assert st.trial(study, "tr1").state == EXPIRED
    assert st.expire(study, 120.0) == []
    st.report(study, "tr2", 1.0, 125.0)
    with pytest.raises(TrialExpiredError):
        st.report(study, "tr1", 1.0, 125.0)
    assert [e.kind for e in st.events(study)][-2:] == ["expire", "report"]


def test_expire_trial(backend):
    """Expiring one trial by id: pending → expired with one event; otherwise a no-op; an unknown id is an error."""
    st, study, _ = backend
    st.suggest(study, _trial(1))
    st.suggest(study, _trial(2))
    st.report(study, "tr2", 0.5, 101.0)
    st.expire_trial(study, "tr1", 102.0)
    assert st.trial(study, "tr1").state == EXPIRED
    assert [(e.kind, e.trial_id, e.time) for e in st.events(study)][-1] == ("expire", "tr1", 102.0)
    before = (st.events(study), st.stats(study), st.trials(study))
    st.expire_trial(study, "tr1", 103.0)  # already expired
    st.expire_trial(study, "tr2", 103.0)  # reported
    with pytest.raises(UnknownTrialError, match="unknown trial id 'nope'"):
        st.expire_trial(study, "nope", 103.0)
    assert (st.events(study), st.stats(study), st.trials(study)) == before
    with pytest.raises(TrialExpiredError):
        st.report(study, "tr1", 1.0, 104.0)


def test_study_meta_is_what_open_study_stored(backend):
    st, study, _ = backend
    meta = st.study_meta(study)
    assert meta["name"] == study and meta["space"] == SPACE.to_dict() and meta["fingerprint"] == SPACE.fingerprint


def test_study_reopen_and_space_mismatch(backend):
    st, study, _ = backend
    meta = st.open_study(study, SPACE)
    assert meta["fingerprint"] == SPACE.fingerprint and meta["policy"] == "test"
    with pytest.raises(StorageMismatchError, match="different search space"):
        st.open_study(study, SearchSpace({"top_k": [1, 3]}))
    assert study in st.studies()


def test_stats_are_the_logs_aggregates(backend):
    st, study, _ = backend
    for i in range(6):
        st.suggest(study, _trial(i, i % 3))
        st.report(study, f"tr{i}", i / 10, 100.0 + i)
    stats, folded = st.stats(study), stats_from_events(st.events(study))
    assert stats.keys() == folded.keys() and len(stats) == 3
    for k in stats:
        assert stats[k].count == folded[k].count and stats[k].config == folded[k].config
        assert math.isclose(stats[k].sum, folded[k].sum) and math.isclose(stats[k].sumsq, folded[k].sumsq)


def test_import_events_into_another_study(backend):
    st, study, _ = backend
    st.suggest(study, _trial(1, 1, expires=150.0))
    st.suggest(study, _trial(2, 2, expires=105.0))
    st.report(study, "tr1", 0.7, 101.0)
    st.expire(study, 106.0)
    other = study + "_copy"
    st.open_study(other, SPACE)
    n = st.import_events(other, st.events(study))
    assert n == 4
    assert [(e.kind, e.trial_id, e.reward) for e in st.events(other)] == [
        (e.kind, e.trial_id, e.reward) for e in st.events(study)
    ]
    assert st.stats(other) == st.stats(study)
    with pytest.raises(ValueError, match="imported before"):
        st.import_events(other, st.events(study))
    assert len(st.events(other)) == 4


def test_threads_lose_no_update(backend):
    st, study, _ = backend
    def work(w):
        for i in range(25):
            st.suggest(study, _trial(f"{w}-{i}", i % 6))
            st.report(study, f"tr{w}-{i}", 1.0, 101.0)
    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(s.count for s in st.stats(study).values()) == 100
    evs = st.events(study)
    assert len(evs) == 200 and len({e.seq for e in evs}) == 200


def _proc_work(url, study, w, n):
    st = open_storage(url)
    for i in range(n):
        st.suggest(study, _trial(f"p{w}-{i}", i % 6))
        st.report(study, f"trp{w}-{i}", float(w), 101.0)
    st.close()


def test_processes_lose_no_update(backend):
    st, study, url = backend
    if url is None:
        pytest.skip("memory storage is per process")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_proc_work, args=(url, study, w, 30)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    stats = st.stats(study)
    assert sum(s.count for s in stats.values()) == 90
    assert sum(s.sum for s in stats.values()) == pytest.approx(30 * (0 + 1 + 2))
    assert len(st.events(study)) == 180


def test_bad_urls():
    with pytest.raises(ValueError, match="not a URL"):
        open_storage("tuning.db")
    with pytest.raises(ValueError, match="cannot use storage URL"):
        open_storage("nosuchdb://x")


def test_bad_storage_settings_and_event_lines_are_typed_errors(tmp_path):
    for call in (
        lambda: open_storage("tuning.db"),
        lambda: open_storage("nosuchdb://x"),
        lambda: open_storage(f"sqlite:///{tmp_path / 'x.db'}", sqlite_synchronous="SOMETIMES"),
    ):
        with pytest.raises(InvalidStorageError):
            call()
    for line in ("not json", "[1, 2]", '{"seq": 1}', '{"seq": 1, "kind": "x", "trial_id": "t", "config": {}, "time": 0}'):
        with pytest.raises(InvalidEventLogError):
            Event.from_json(line)


def test_one_database_url_rule_for_storage_grid_tables_and_optuna(tmp_path):
    """storage/urls.py is the one place a location becomes an SQLAlchemy URL; the three users agree."""
    from autorag_hp.evaluation.table import to_url
    from autorag_hp.storage.urls import database_url
    from autorag_hp.training.optuna_tuner import normalize_storage_url

    pg = "postgresql://u@127.0.0.1:5432/test"
    assert database_url(pg) == to_url(pg) == normalize_storage_url(pg) == "postgresql+psycopg://u@127.0.0.1:5432/test"
    assert database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"  # an explicit driver stays
    assert database_url("sqlite:///x.db") == "sqlite:///x.db" and normalize_storage_url(None) is None
    assert database_url("grid.sqlite") == "grid.sqlite"  # a bare path is a URL only where paths are allowed
    path = tmp_path / "sub" / "grid.sqlite"
    assert to_url(path) == f"sqlite:///{path.resolve()}" and path.parent.is_dir()


# --- keyset listings -------------------------------------------------------------------------------------------
def _all_pages(st, study, **kw):
    out, after, pages = [], None, 0
    while True:
        page = st.trial_page(study, after=after, **kw)
        assert isinstance(page, TrialPage) and len(page.trials) <= kw["limit"]
        out += page.trials
        pages += 1
        if page.next is None:
            return out, pages
        assert len(page.trials) == kw["limit"]
        after = page.next


def test_trial_pages_by_keyset_with_every_filter(backend):
    """Pages of any length, newest or oldest first, filtered by state and/or owner, concatenate to exactly the
    filtered creation order, and the owner each trial was stored with comes back."""
    st, study, _ = backend
    owners = ["web", "bot", None]
    for i in range(23):
        st.suggest(study, _trial(i, i % 6, expires=150.0 if i % 5 == 0 else None, owner=owners[i % 3]))
    for i in range(0, 23, 2):
        if i % 5:
            st.report(study, f"tr{i}", i / 10, 101.0)
    st.expire(study, 160.0)
    everything = st.trials(study)
    assert {t.state for t in everything} == {PENDING, REPORTED, EXPIRED}
    assert [t.owner for t in everything[:3]] == ["web", "bot", None] and st.trial(study, "tr3").owner == "web"
    for state in (None, PENDING, REPORTED, EXPIRED):
        for owner in (None, "web", "bot", "nobody"):
            want = [t for t in everything if (state is None or t.state == state) and (owner is None or t.owner == owner)]
            for newest_first in (True, False):
                for limit in (1, 4, 100):
                    got, pages = _all_pages(st, study, state=state, owner=owner, limit=limit, newest_first=newest_first)
                    assert got == (want[::-1] if newest_first else want), (state, owner, newest_first, limit)
                    assert pages == max(1, -(-len(want) // limit))
    page = st.trial_page(study, limit=5)
    assert [t.trial_id for t in page.trials] == [f"tr{i}" for i in range(22, 17, -1)]
    assert st.trial_page(study, limit=5, after=page.next).trials[0].trial_id == "tr17"
    for bad in ({"state": "nonsense"}, {"limit": 0}, {"limit": True}, {"after": -1}, {"after": "3"}):
        with pytest.raises(ValueError):
            st.trial_page(study, **bad)


# --- snapshots -------------------------------------------------------------------------------------------------
def test_snapshots_keep_the_newest_per_version_and_only_with_their_event(backend):
    st, study, _ = backend
    assert st.snapshot(study, "v1") is None
    st.save_snapshot(study, Snapshot("v1", 5, '{"a": 5}'))
    st.save_snapshot(study, Snapshot("v1", 3, '{"a": 3}'))  # older: kept out
    st.save_snapshot(study, Snapshot("v2", 1, '{"b": 1}'))
    assert st.snapshot(study, "v1") == Snapshot("v1", 5, '{"a": 5}') and st.snapshot(study, "v2").seq == 1
    st.suggest(study, _trial(1), Snapshot("v1", 7, '{"a": 7}'))  # stored with the event, in its transaction
    assert st.snapshot(study, "v1").seq == 7
    with pytest.raises(DuplicateTrialError):
        st.suggest(study, _trial(1), Snapshot("v1", 8, '{"a": 8}'))
    with pytest.raises(UnknownTrialError):
        st.report(study, "nope", 0.5, 101.0, Snapshot("v1", 9, '{"a": 9}'))
    assert st.snapshot(study, "v1").seq == 7  # the refused events wrote no snapshot either
    st.report(study, "tr1", 0.5, 101.0, Snapshot("v1", 10, '{"a": 10}'))
    with pytest.raises(TrialAlreadyReportedError):
        st.report(study, "tr1", 0.5, 102.0, Snapshot("v1", 11, '{"a": 11}'))
    assert st.snapshot(study, "v1") == Snapshot("v1", 10, '{"a": 10}')
    other = study + "_other"
    st.open_study(other, SPACE)
    assert st.snapshot(other, "v1") is None  # per study


# --- schema: fresh databases, concurrent start-up, older databases -------------------------------------------
@pytest.fixture
def fresh_pg(pg_url):
    """A PostgreSQL database of its own (created for the test, dropped after), for tests that need an empty one."""
    import psycopg

    name = f"autorag_race_{uuid.uuid4().hex[:10]}"
    admin = pg_url.replace("postgresql://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _start_up(url, barrier, w):
    from autorag_hp.storage.sql import SQLStorage

    barrier.wait(60)  # every process opens the fresh database at the same moment
    st = SQLStorage(url)
    st.open_study("race", SPACE)
    st.suggest("race", _trial(f"w{w}", w % 6, owner=f"client{w}"))
    st.close()


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_processes_starting_at_once_on_a_fresh_database_all_succeed(request, tmp_path, db):
    url = f"sqlite:///{tmp_path / 'fresh.db'}" if db == "sqlite" else request.getfixturevalue("fresh_pg")
    ctx = mp.get_context("spawn")
    n = 6
    barrier = ctx.Barrier(n)
    procs = [ctx.Process(target=_start_up, args=(url, barrier, w)) for w in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * n
    st = open_storage(url)
    try:
        assert st.studies() == ["race"] and len(st.trials("race")) == n
        assert {t.owner for t in st.trials("race")} == {f"client{w}" for w in range(n)}
    finally:
        st.close()


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_a_version_1_database_gains_owners_indexes_and_snapshots_when_opened(request, tmp_path, db):
    """A database written before schema 2 (no owner column, no listing indexes, no snapshot table) opens, keeps
    its trials (owner unknown) and serves listings and snapshots from then on."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.db'}" if db == "sqlite" else request.getfixturevalue("fresh_pg")
    st = open_storage(url)
    st.open_study("old", SPACE)
    for i in range(3):
        st.suggest("old", _trial(i, i))
    st.report("old", "tr1", 0.5, 101.0)
    with st.engine.begin() as conn:  # back to version 1
        for ix in ("autorag_trials_state_n", "autorag_trials_owner_state_n", "autorag_events_study_seq"):
            conn.exec_driver_sql(f"DROP INDEX {ix}")
        conn.exec_driver_sql("ALTER TABLE autorag_trials DROP COLUMN owner")
        conn.exec_driver_sql("DROP TABLE autorag_snapshots")
    st.close()
    st = open_storage(url)
    try:
        names = {ix["name"] for ix in sa.inspect(st.engine).get_indexes("autorag_trials")}
        assert {"autorag_trials_state_n", "autorag_trials_owner_state_n"} <= names
        assert "autorag_events_study_seq" in {ix["name"] for ix in sa.inspect(st.engine).get_indexes("autorag_events")}
        assert [(t.trial_id, t.owner) for t in st.trials("old")] == [("tr0", None), ("tr1", None), ("tr2", None)]
        st.suggest("old", _trial(3, 3, owner="web"))
        assert [t.trial_id for t in st.trial_page("old", owner="web").trials] == ["tr3"]
        assert [t.trial_id for t in st.trial_page("old", state=REPORTED).trials] == ["tr1"]
        st.save_snapshot("old", Snapshot("v", 4, "{}"))
        assert st.snapshot("old", "v").seq == 4
    finally:
        st.close()


def test_sql_storage_times_the_study_lock_per_suggest_and_report(tmp_path):
    from autorag_hp.storage import TrialRecord, open_storage
    from autorag_hp.storage.memory import MemoryStorage

    assert MemoryStorage().lock_held() is None  # no lock shared with other processes
    st = open_storage(f"sqlite:///{tmp_path / 'lock.db'}")
    st.open_study("s", SearchSpace({"a": [1, 2]}))
    assert st.lock_held() == {"count": 0}
    cfg = SearchSpace({"a": [1, 2]}).config_at(0)
    for i in range(3):
        st.suggest("s", TrialRecord(f"t{i}", cfg.to_json(), cfg.id, {}, created_at=0.0))
    st.report("s", "t0", 1.0, 1.0)
    held = st.lock_held()
    assert held["count"] == 4 and 0 < held["p50_ms"] <= held["p99_ms"] <= held["max_ms"] < 5_000


def test_the_service_worker_threads_never_wait_for_a_new_postgres_connection(pg_url, unique_name):
    """As many threads as the service runs requests in (``WORKER_THREADS``), each suggesting and reporting in a
    loop, open each pool's connections once: a pool smaller than that closed the connections past its size after
    every use, and 1 in 6 requests of a loaded replica waited for the server to start a new process."""
    import sqlalchemy as sa

    from autorag_hp.service.app import WORKER_THREADS

    st = open_storage(pg_url)
    st.open_study(unique_name, SPACE, {"policy": "test"})
    connects = []
    listener = lambda *_: connects.append(1)  # noqa: E731
    sa.event.listen(sa.pool.Pool, "connect", listener)
    barrier = threading.Barrier(WORKER_THREADS)
    try:
        def work(w):
            barrier.wait()
            for i in range(40):
                st.suggest(unique_name, _trial(f"{w}-{i}", i % 6))
                st.report(unique_name, f"tr{w}-{i}", 1.0, 101.0)
                st.read_log(unique_name)
        threads = [threading.Thread(target=work, args=(w,)) for w in range(WORKER_THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sa.event.remove(sa.pool.Pool, "connect", listener)
        st.close()
    check = open_storage(pg_url)
    assert len(check.events(unique_name)) == 2 * 40 * WORKER_THREADS
    check.close()
    assert len(connects) <= 3 * WORKER_THREADS, len(connects)  # 3 pools (suggest, report, read): each opened once
