"""Start-up from a snapshot: the newest snapshot plus the events after it gives exactly the state of the full fold
(the policy's state_dict, the open batch, the last event) and the same next decisions, for every policy, batch
sizes 1 and 3, on memory, SQLite and PostgreSQL; a snapshot of another version, or one that does not load, is
ignored."""

from __future__ import annotations

import json

import numpy as np
import pytest

from autorag_hp import SearchSpace, TrialExpiredError, Tuner
from autorag_hp.policies import available
from autorag_hp.storage import MemoryStorage, open_storage
from autorag_hp.storage.base import Snapshot

SPACE = SearchSpace({"retrieval": {"top_k": [1, 3, 5], "embedding": ["bm25", "minilm"]},
                     "generation": {"prompt": ["a", "b", "c"]}})
EVERY = 7  # a snapshot every 7 events: several snapshots and a tail in a short test


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def reward_of(cfg, rng) -> float:
    r = {1: 0.0, 3: 0.3, 5: 0.6}[cfg["top_k"]] + (0.3 if cfg["embedding"] == "minilm" else 0.0)
    return r + {"a": 0.0, "b": 0.4, "c": 0.1}[cfg["prompt"]] + 0.1 * float(rng.standard_normal())


def drive(tuner: Tuner, clock: Clock, steps: int, seed: int) -> list:
    """Asks with repeated questions and two owners; most trials are reported (some late, out of order), some
    never and expire. Returns what was decided (configuration, decision, slot, policy info)."""
    rng = np.random.default_rng(seed)
    held: list[str] = []
    out = []
    for i in range(steps):
        if tuner.exhausted:
            break
        clock.t += 1.0
        tr = tuner.suggest(question=f"q{int(rng.integers(4))}", owner=("web", "bot")[i % 2])
        out.append((tr.config.id, tr.decision, tr.slot, json.dumps(dict(tr.record.policy), sort_keys=True)))
        u = rng.random()
        if u < 0.6:
            tuner.report(tr.id, reward_of(tr.config, rng))
        elif u < 0.85:
            held.append(tr.id)  # reported a little later, out of order
        if len(held) > 2:
            try:
                tuner.report(held.pop(int(rng.integers(len(held)))), reward_of(tr.config, rng))
            except TrialExpiredError:
                out.append("too late")  # its window passed: it expired, and the report is refused
    return out


def open_tuner(storage, study, policy, batch, clock, every=EVERY, **kw):
    return Tuner(SPACE, policy=policy, storage=storage, seed=3, batch_size=batch, study=study, trial_timeout=5.0,
                 clock=clock, snapshot_every=every, **kw)


def stores(backend, request, tmp_path):
    if backend == "memory":
        st = MemoryStorage()
        return st, st
    url = f"sqlite:///{tmp_path / 'snap.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    return open_storage(url), open_storage(url)


def check_restart(storage, twin_storage, study, policy, batch, steps=44, **kw):
    """Run the same traffic through two tuners, one storing snapshots and one not; then restart the first from its
    snapshot and the second by a full fold of its log, compare their states and drive the two on in lockstep:
    the same decisions."""
    copy = study + "_full"
    clock_a, clock_b = Clock(), Clock()
    first = open_tuner(storage, study, policy, batch, clock_a, **kw)
    assert drive(first, clock_a, steps, seed=1) == drive(open_tuner(twin_storage, copy, policy, batch, clock_b, every=0,
                                                                     **kw), clock_b, steps, seed=1)
    snap = storage.snapshot(study, first.snapshot_version)
    assert snap is not None and first.last_seq // 2 < snap.seq <= first.last_seq
    assert twin_storage.snapshot(copy, first.snapshot_version) is None

    reads = []
    read_log = storage.read_log
    storage.read_log = lambda s, after=0, horizon=None: reads.append(after) or read_log(s, after, horizon)
    try:
        restarted = open_tuner(storage, study, policy, batch, clock_a, **kw)
    finally:
        del storage.read_log
    assert min(reads) == snap.seq  # it read the tail after the snapshot, never the log before it
    full = open_tuner(twin_storage, copy, policy, batch, clock_b, every=0, **kw)
    assert restarted.policy.state_dict() == full.policy.state_dict()
    assert restarted.open_batch == full.open_batch
    # and from a snapshot with no tail at all: the open batch and the last event come from the snapshot alone
    first.save_snapshot()
    restarted = open_tuner(storage, study, policy, batch, clock_a, **kw)
    assert restarted.policy.state_dict() == full.policy.state_dict()
    assert restarted.open_batch == full.open_batch and (batch == 1) == (full.open_batch is None)
    assert restarted.last_seq == first.last_seq and restarted.n_decisions == full.n_decisions
    assert drive(restarted, clock_a, 20, seed=2) == drive(full, clock_b, 20, seed=2)
    assert restarted.policy.state_dict() == full.policy.state_dict()
    assert restarted.best(None) == full.best(None)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("policy", available())
def test_snapshot_plus_tail_is_the_full_fold_for_every_policy(policy, batch, unique_name):
    st = MemoryStorage()
    check_restart(st, st, unique_name, policy, batch, steps=31 if policy == "optuna_tpe" else 44)  # batch 3 left open


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize(("policy", "batch"), [("hier_ucb", 1), ("hier_ucb", 3), ("thompson", 3), ("additive_lucb", 1)])
def test_snapshot_plus_tail_is_the_full_fold_in_sql(backend, policy, batch, request, tmp_path, unique_name):
    st, twin = stores(backend, request, tmp_path)
    try:
        check_restart(st, twin, unique_name, policy, batch)
    finally:
        st.close()
        twin.close()


def test_the_online_wrapper_with_discounting_and_a_fallback_restores_exactly(unique_name):
    """The service's policy: exploration cap, pinned fallback and drift discounting (forget) all survive."""
    from autorag_hp.policies.online import OnlinePolicy

    st = MemoryStorage()
    params = {"inner": "hier_ucb", "explore": 0.4, "fallback": {"top_k": 3, "embedding": "bm25", "prompt": "a"},
              "min_count": 2.0, "discount": 0.97, "tag": "abc"}
    clock = Clock()

    def tuner(storage, study, clk, every):
        return Tuner(SPACE, policy=OnlinePolicy(SPACE, seed=3, **params), storage=storage, seed=3, study=study,
                     trial_timeout=5.0, clock=clk, snapshot_every=every)

    b = Clock()
    assert drive(tuner(st, unique_name, clock, EVERY), clock, 50, seed=1) == drive(
        tuner(st, unique_name + "_full", b, 0), b, 50, seed=1)
    restarted, full = tuner(st, unique_name, clock, EVERY), tuner(st, unique_name + "_full", b, 0)
    assert restarted.policy.state_dict() == full.policy.state_dict()
    assert drive(restarted, clock, 20, seed=2) == drive(full, b, 20, seed=2)


def test_a_snapshot_of_other_parameters_or_that_does_not_load_is_ignored(unique_name):
    st = MemoryStorage()
    clock = Clock()
    first = open_tuner(st, unique_name, "ucb", 1, clock, policy_params={"alpha": 1.0})
    drive(first, clock, 30, seed=1)
    full = open_tuner(st, unique_name, "ucb", 1, Clock(clock.t), every=0, policy_params={"alpha": 0.5})
    other = open_tuner(st, unique_name, "ucb", 1, Clock(clock.t), policy_params={"alpha": 0.5})
    assert other.snapshot_version != first.snapshot_version
    assert other.policy.state_dict() == full.policy.state_dict()  # folded from the log: alpha=1.0's snapshot unused
    version = other.snapshot_version
    seq = other.last_seq + 100  # newer than any real one: it would win if it were trusted
    good = json.loads(other.snapshot().state)
    forged = [
        "not json",
        json.dumps({**good, "format": 999}),
        json.dumps({**good, "policy": {**good["policy"], "policy": "thompson"}}),
        json.dumps({**good, "policy": {**good["policy"], "params": {"alpha": 9.0}}}),
        json.dumps({**good, "policy": {**good["policy"], "space": "0" * 16}}),
        json.dumps({**good, "batch": ['{"top_k": 99}', {}]}),
        json.dumps({**good, "policy": {**good["policy"], "arms": {SPACE.config_at(0).id: "not numbers"}}}),
    ]
    for i, text in enumerate(forged):
        st.save_snapshot(unique_name, Snapshot(version, seq + i, text))
        again = open_tuner(st, unique_name, "ucb", 1, Clock(clock.t), policy_params={"alpha": 0.5})
        assert again.policy.state_dict() == full.policy.state_dict(), text[:80]
        assert again.last_seq == full.last_seq


def test_snapshots_are_written_every_n_events_with_their_event(tmp_path, unique_name):
    st = open_storage(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        clock = Clock()
        t = open_tuner(st, unique_name, "hier_ucb", 1, clock, every=10)
        seen = set()
        for _ in range(40):
            tr = t.suggest()
            t.report(tr.id, 0.5)
            snap = st.snapshot(unique_name, t.snapshot_version)
            if snap is not None:
                seen.add(snap.seq)
                assert t.last_seq - snap.seq <= 11  # never more than N (+ the event in flight) behind
        assert len(seen) >= 7
        assert open_tuner(st, unique_name, "hier_ucb", 1, clock, every=0).policy.state_dict() == t.policy.state_dict()
        # a first start on a long log without a snapshot folds it once and stores one, so the next start is short
        other = open_tuner(st, unique_name, "hier_ucb", 1, clock, every=10, policy_params={"alpha_high": 0.3})
        assert st.snapshot(unique_name, other.snapshot_version).seq == other.last_seq
        for bad in (-1, True, "sometimes", 2.5):
            with pytest.raises(ValueError, match="snapshot_every"):
                open_tuner(st, unique_name, "hier_ucb", 1, clock, every=bad)
        # the default: every 1,000 events where the storage outlives the process, never in memory
        assert Tuner(SPACE, storage=st, study=unique_name).snapshot_every == 1000
        assert Tuner(SPACE).snapshot_every is None
    finally:
        st.close()
