"""Following a shared log whose writers commit out of sequence order (PostgreSQL without a study-wide lock).

Real PostgreSQL: one connection holds a transaction open after it took a sequence number, while tuners write
and read later numbers; the reader must apply the late commit once, and a rolled-back one never.
"""

from __future__ import annotations

import threading

import pytest

from autorag_hp import SearchSpace, Tuner
from autorag_hp.fold import LogFollower
from autorag_hp.space import Config
from autorag_hp.storage.base import REPORT, SUGGEST, Event, LogRead

SPACE = SearchSpace({"k": [1, 2, 3], "p": ["a", "b"]})


def _ev(seq: int, kind: str = SUGGEST, tid: str | None = None) -> Event:
    return Event(seq, kind, tid or f"t{seq}", SPACE.config_at(0).to_json(), 1.0 if kind == REPORT else None, {}, 0.0)


def test_an_ordered_log_is_applied_once_and_own_events_are_skipped():
    f = LogFollower()
    f.claim(SUGGEST, "t2", applied=True)
    assert [e.seq for e in f.take(LogRead([_ev(1), _ev(2), _ev(3)]))] == [1, 3]
    assert f.take(LogRead([])) == [] and f.after == 3 and not f.claimed(SUGGEST, "t2")
    # a report whose write returned after a read saw it: applied by its owner, never by the read
    f.claim(REPORT, "t1", applied=False)
    assert f.take(LogRead([_ev(4, REPORT, "t1")])) == []
    assert f.position() is None  # the state misses an event a read passed: no snapshot now
    f.committed(REPORT, "t1", 4)
    assert f.position() == {"after": 4, "horizon": None, "recent": [], "skip": []} and f.last == 4


def test_out_of_order_commits_are_applied_once_by_the_horizon():
    f = LogFollower()
    # read 1: events 1 and 3 are visible, 2 is in flight; 3 was written above the horizon 100
    assert [e.seq for e in f.take(LogRead([_ev(1), _ev(3)], 100, frozenset({3})))] == [1, 3]
    # read 2 (asked after=3, horizon=100): 2 committed; 3 comes back and is skipped
    assert [e.seq for e in f.take(LogRead([_ev(2), _ev(3)], 100, frozenset({2, 3})))] == [2]
    # read 3: the horizon passed every writer; nothing comes back twice
    assert f.take(LogRead([_ev(2), _ev(3)], 120, frozenset())) == [] and f.horizon == 120


def test_a_snapshot_waits_for_writes_in_flight_and_names_what_it_already_holds():
    f = LogFollower()
    f.claim(SUGGEST, "a", applied=True)
    f.claim(SUGGEST, "b", applied=True)
    assert f.position(writing=(SUGGEST, "a")) is None  # b's effect is in the state but b may never be stored
    f.committed(SUGGEST, "b", 7)
    pos = f.position(writing=(SUGGEST, "a"))
    assert pos["skip"] == [[SUGGEST, "a"], [SUGGEST, "b"]]
    g = LogFollower()
    g.restore(pos)
    assert g.take(LogRead([_ev(7, SUGGEST, "b"), _ev(8, SUGGEST, "a"), _ev(9)])) == [_ev(9)]


def _arms(tuner: Tuner) -> dict[str, float]:
    """Per configuration: credited pulls, reward sum, pending decisions (the policy's sufficient statistics)."""
    return {f"{k}/{i}": x for k, v in tuner.policy.state_dict()["arms"].items() for i, x in enumerate(v[:3])}


def _raw(pg_url: str):
    import psycopg

    return psycopg.connect(pg_url)


def _slow_suggest(conn, study: str, tid: str, config: Config) -> None:
    """Take a sequence number in an open transaction (the tuner's own statement, held before its commit)."""
    cur = conn.cursor()
    cur.execute("SELECT id FROM autorag_studies WHERE name = %s", (study,))
    sid = cur.fetchone()[0]
    cur.execute("INSERT INTO autorag_events (study_id, kind, trial_id, config, reward, info, time, xid) VALUES "
                "(%s, 'suggest', %s, %s, NULL, '{}', 0, pg_current_xact_id()::text::bigint)", (sid, tid, config.to_json()))
    cur.execute("INSERT INTO autorag_trials (study_id, trial_id, n, config, config_id, info, state, created_at) "
                "SELECT %s, %s, max(seq), %s, %s, '{}', 'pending', 0 FROM autorag_events WHERE trial_id = %s",
                (sid, tid, config.to_json(), config.id, tid))


@pytest.mark.postgres
def test_a_commit_below_what_a_reader_saw_is_applied_once_and_a_rollback_never(pg_url, unique_name):
    writer = Tuner(SPACE, "random", pg_url, study=unique_name, seed=0)
    reader = Tuner(SPACE, "random", pg_url, study=unique_name, seed=1)
    slow, aborted = _raw(pg_url), _raw(pg_url)
    try:
        _slow_suggest(slow, unique_name, "slow", SPACE.config_at(1))
        _slow_suggest(aborted, unique_name, "aborted", SPACE.config_at(2))
        for _ in range(3):  # later sequence numbers, committed first
            t = writer.suggest()
            writer.report(t.id, 0.5)
        reader.sync()
        assert reader.n_decisions == 3
        slow.commit()
        aborted.rollback()
        reader.sync()
        reader.sync()
        assert reader.n_decisions == 4  # the late commit once, the rolled-back one never
        t = writer.suggest()
        writer.report(t.id, 1.0)
        reader.sync()
        fresh = Tuner(SPACE, "random", pg_url, study=unique_name, seed=1, snapshot_every=0)
        assert reader.n_decisions == fresh.n_decisions == 5
        assert _arms(reader) == pytest.approx(_arms(fresh))
    finally:
        slow.close()
        aborted.close()
        for t in (writer, reader):
            t.close()


@pytest.mark.postgres
def test_two_tuners_with_threads_fold_every_event_once(pg_url, unique_name):
    """Two tuners (as two replicas), four threads each, asking and reporting at once with no shared lock: each
    tuner's statistics are those of a fresh fold of the log."""
    tuners = [Tuner(SPACE, "ucb", pg_url, study=unique_name, seed=s) for s in (0, 1)]
    errors: list[BaseException] = []

    def work(tuner: Tuner, k: int) -> None:
        try:
            for i in range(15):
                t = tuner.suggest()
                tuner.report(t.id, ((k * 7 + i) % 5) / 4)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t, k)) for k, t in enumerate(tuners * 4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:3]
    fresh = Tuner(SPACE, "ucb", pg_url, study=unique_name, seed=2, snapshot_every=0)
    want = _arms(fresh)
    try:
        for t in tuners:
            t.sync()
            assert t.n_decisions == fresh.n_decisions == 120
            assert _arms(t) == pytest.approx(want)
    finally:
        for t in (*tuners, fresh):
            t.close()
