import json
import math
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from autorag_hp import (
    InvalidConfigError,
    InvalidRewardError,
    InvalidSpaceError,
    SearchSpace,
    SpaceExhaustedError,
    StorageMismatchError,
    TrialAlreadyReportedError,
    TrialExpiredError,
    Tuner,
    UnknownPolicyError,
    UnknownTrialError,
)
from autorag_hp.policies import available

SPEC = {
    "retrieval": {"chunk_size": [256, 512, 1024], "top_k": [1, 3, 5, 7, 9], "embedding": ["bm25", "minilm", "e5"]},
    "generation": {"temperature": [0.0, 0.7], "prompt": ["concise", "cite", "stepwise"]},
}


def reward_of(cfg, step=0):
    """Deterministic additive table with a little deterministic 'noise' depending on the step."""
    r = {1: 0.0, 3: 0.2, 5: 0.5, 7: 0.4, 9: 0.3}[cfg["top_k"]] + {"bm25": 0.0, "minilm": 0.3, "e5": 0.2}[cfg["embedding"]]
    r += {"concise": 0.2, "cite": 0.1, "stepwise": 0.0}[cfg["prompt"]] - 0.1 * cfg["temperature"]
    r += {256: 0.0, 512: 0.1, 1024: 0.05}[cfg["chunk_size"]]
    return r + 0.05 * math.sin(step * 1.7)


class FakeClock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def test_the_issue_example_works_exactly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from autorag_hp import Tuner
    space = SearchSpace({
        "retrieval": {"chunk_size": [256, 512, 1024], "top_k": [1, 3, 5, 7, 9], "embedding": ["bm25", "minilm", "e5"]},
        "generation": {"temperature": [0.0, 0.7], "prompt": ["concise", "cite", "stepwise"]},
    })
    tuner = Tuner(space, policy="hier_ucb", storage="sqlite:///tuning.db", seed=0)
    trial = tuner.suggest()
    assert isinstance(trial.id, str)
    assert json.loads(json.dumps(dict(trial.config))) == dict(trial.config)
    hash(trial.config)
    tuner.report(trial.id, 0.73)
    rows = tuner.best(3)
    assert len(rows) == 1
    row = rows[0]
    assert (row.config, row.mean, row.count) == (trial.config, 0.73, 1)
    assert row.lower is None and row.upper is None and row.note == "one reward: no interval"
    assert "0.730" in str(row) and "no interval" in str(row)
    assert (tmp_path / "tuning.db").exists()


@pytest.mark.parametrize("policy", available())
def test_every_policy_runs_through_the_tuner(policy):
    tuner = Tuner(SPEC, policy=policy, seed=1)
    for step in range(60):
        try:
            trial = tuner.suggest()
        except SpaceExhaustedError:
            break
        tuner.report(trial.id, reward_of(trial.config, step))
    best = tuner.best(3)
    assert len(best) == 3 and best[0].score >= best[1].score >= best[2].score
    observed = tuner.best(3, rule="mean")
    assert observed[0].mean >= observed[1].mean >= observed[2].mean


def test_best_confidence_interval():
    tuner = Tuner({"k": [1, 2]}, policy="grid", policy_params={"shuffle": False}, batch_size=3, seed=0)
    for r in (1.0, 2.0, 3.0):
        tuner.report(tuner.suggest().id, r)
    (row,) = tuner.best()
    assert row.count == 3 and row.mean == 2.0 and row.std == pytest.approx(1.0)
    # t(0.975, 2) = 4.3027: the interval 2 ± 2.484 is wider than the rewards seen, so it is clipped to them
    assert (row.lower, row.upper) == (1.0, 3.0)
    (row,) = tuner.best(bounds=(-10.0, 10.0))  # a declared reward range clips less
    half = 4.302652729911275 * 1.0 / math.sqrt(3)
    assert (row.lower, row.upper) == (pytest.approx(2 - half), pytest.approx(2 + half))


def test_batch_shares_a_configuration_and_credits_one_pull():
    tuner = Tuner(SPEC, policy="hier_ucb", seed=0, batch_size=4)
    trials = [tuner.suggest() for _ in range(8)]
    assert len({t.config for t in trials[:4]}) == 1 and len({t.config for t in trials[4:]}) == 1
    assert [t.slot for t in trials] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert [t.decision for t in trials] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert tuner.n_decisions == 2
    for t, r in zip(trials[:4], (0.0, 1.0, 1.0, 0.0)):
        tuner.report(t.id, r)
    (row,) = tuner.best(rule="mean")
    assert (row.config, row.mean, row.count) == (trials[0].config, pytest.approx(0.5), 4)
    assert tuner.policy._n.sum() == pytest.approx(1.0)  # the bandit credits one pull with the batch's mean


def test_out_of_order_late_and_duplicate_reports():
    tuner = Tuner(SPEC, policy="ucb", seed=0)
    trials = [tuner.suggest() for _ in range(5)]
    assert len({t.config for t in trials}) == 5  # pending pulls spread concurrent requests
    for t in reversed(trials):
        tuner.report(t.id, reward_of(t.config))
    n_events = len(list(tuner.export_events()))
    with pytest.raises(TrialAlreadyReportedError, match="already reported"):
        tuner.report(trials[2].id, 99.0)
    assert len(list(tuner.export_events())) == n_events
    assert all(r.mean < 99 for r in tuner.best(10))


def test_expiry_blocks_nothing_and_rejects_late_reports():
    clock = FakeClock()
    tuner = Tuner(SPEC, policy="hier_ucb", seed=0, trial_timeout=30, clock=clock)
    stale = tuner.suggest()
    clock.t += 31
    fresh = tuner.suggest()  # the sweep runs here: the stale trial expires, nothing waits for it
    assert tuner.trial(stale.id).state == "expired"
    with pytest.raises(TrialExpiredError):
        tuner.report(stale.id, 1.0)
    tuner.report(fresh.id, 0.5)
    assert [r.count for r in tuner.best()] == [1]
    assert tuner.policy._pending.sum() == pytest.approx(0.0)


@pytest.mark.parametrize(
    "bad, exc, match",
    [
        (float("nan"), InvalidRewardError, "finite"),
        (float("inf"), InvalidRewardError, "finite"),
        ("0.5", InvalidRewardError, "real number"),
        (True, InvalidRewardError, "real number"),
        (None, InvalidRewardError, "real number"),
    ],
)
def test_bad_rewards_leave_storage_unchanged(tmp_path, bad, exc, match):
    tuner = Tuner(SPEC, storage=f"sqlite:///{tmp_path / 't.db'}", seed=0)
    trial = tuner.suggest()
    before = list(tuner.export_events())
    with pytest.raises(exc, match=match):
        tuner.report(trial.id, bad)
    assert list(tuner.export_events()) == before
    tuner.report(trial.id, 0.1)  # the trial is still usable


def test_bad_inputs_raise_clear_errors(tmp_path):
    tuner = Tuner(SPEC, storage=f"sqlite:///{tmp_path / 't.db'}", seed=0)
    tuner.suggest()
    before = list(tuner.export_events())
    with pytest.raises(UnknownTrialError, match="unknown trial id 'missing'"):
        tuner.report("missing", 0.1)
    with pytest.raises(TypeError, match="trial_id"):
        tuner.report(42, 0.1)  # type: ignore[arg-type]
    assert list(tuner.export_events()) == before
    with pytest.raises(InvalidSpaceError, match="empty"):
        Tuner({})
    with pytest.raises(UnknownPolicyError, match="available"):
        Tuner(SPEC, policy="bogus")
    with pytest.raises(ValueError, match="batch_size"):
        Tuner(SPEC, batch_size=0)
    with pytest.raises(ValueError, match="trial_timeout"):
        Tuner(SPEC, trial_timeout=-1)
    with pytest.raises(StorageMismatchError, match="different search space"):
        Tuner({"top_k": [1, 3]}, storage=f"sqlite:///{tmp_path / 't.db'}")
    with pytest.raises(InvalidConfigError, match="unknown parameter"):
        tuner.space.config({"nope": 1})
    assert list(tuner.export_events()) == before


def _drive(tuner, steps, offset=0):
    out = []
    for i in range(steps):
        trial = tuner.suggest()
        tuner.report(trial.id, reward_of(trial.config, offset + i))
        out.append(trial.config.id)
    return out


@pytest.mark.parametrize("policy", ["hier_ucb", "hier_ts", "thompson", "epsilon_greedy", "grid"])
def test_reopened_tuner_continues_with_the_same_decisions(tmp_path, policy):
    straight = _drive(Tuner(SPEC, policy=policy, seed=5, batch_size=2), 40)
    url = f"sqlite:///{tmp_path / 'resume.db'}"
    first = Tuner(SPEC, policy=policy, storage=url, seed=5, batch_size=2)
    part1 = _drive(first, 17)  # stop in the middle of a batch
    first.close()
    second = Tuner(SPEC, policy=policy, storage=url, seed=5, batch_size=2)
    assert second.n_decisions == 9
    part2 = _drive(second, 23, offset=17)
    assert part1 + part2 == straight


def test_threads_share_one_tuner():
    tuner = Tuner(SPEC, policy="hier_ucb", seed=0, batch_size=4)
    errors = []

    def work():
        try:
            for i in range(100):
                trial = tuner.suggest()
                tuner.report(trial.id, reward_of(trial.config, i))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(r.count for r in tuner.best(10_000)) == 800
    assert tuner.policy._n.sum() == pytest.approx(200.0)  # 800 rewards / B


def _tuner_proc(url, study, n, seed):
    tuner = Tuner(SPEC, policy="hier_ucb", storage=url, study=study, seed=seed)
    for i in range(n):
        trial = tuner.suggest()
        tuner.report(trial.id, reward_of(trial.config, i))
    tuner.close()


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_tuners_in_several_processes_lose_no_update(request, tmp_path, unique_name, db):
    url = f"sqlite:///{tmp_path / 'mp.db'}" if db == "sqlite" else request.getfixturevalue("pg_url")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_tuner_proc, args=(url, unique_name, 40, s)) for s in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    tuner = Tuner(SPEC, policy="hier_ucb", storage=url, study=unique_name)
    assert sum(r.count for r in tuner.best(10_000)) == 120
    assert tuner.n_decisions == 120  # the fold saw every process's decisions
    assert tuner.policy._n.sum() == pytest.approx(120.0)


CRASH_SCRIPT = r"""
import sys
from autorag_hp import Tuner
url = sys.argv[1]
spec = {"top_k": [1, 3, 5, 7, 9], "prompt": ["a", "b", "c"]}
tuner = Tuner(spec, policy="hier_ucb", storage=url, seed=0)
i = 0
while True:
    trial = tuner.suggest()
    tuner.report(trial.id, float(i % 5))
    print(trial.id, flush=True)  # printed only after report() returned
    i += 1
"""


def test_sigkill_loses_no_returned_report(tmp_path):
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    proc = subprocess.Popen([sys.executable, "-c", CRASH_SCRIPT, url], stdout=subprocess.PIPE, text=True)
    acknowledged = []
    try:
        for line in proc.stdout:
            acknowledged.append(line.strip())
            if len(acknowledged) >= 300:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    tuner = Tuner({"top_k": [1, 3, 5, 7, 9], "prompt": ["a", "b", "c"]}, policy="hier_ucb", storage=url, seed=0)
    reported = {t.trial_id for t in tuner.trials("reported")}
    assert set(acknowledged) <= reported
    assert sum(r.count for r in tuner.best(100)) == len(reported)
    trial = tuner.suggest()  # and the store is usable
    tuner.report(trial.id, 1.0)


def test_export_import_roundtrip(tmp_path):
    src = Tuner(SPEC, policy="hier_ucb", seed=3)
    _drive(src, 25)
    lines = list(src.export_events())
    dst = Tuner(SPEC, policy="hier_ucb", storage=f"sqlite:///{tmp_path / 'i.db'}", seed=3)
    assert dst.import_events(lines) == 50
    assert [(r.config, r.count, pytest.approx(r.mean)) for r in dst.best(5)] == [
        (r.config, r.count, r.mean) for r in src.best(5)
    ]
    assert dst.state_dict()["arms"] == src.state_dict()["arms"]
    assert dst.suggest().config == src.suggest().config  # warm-started identically


def test_speed_smoke():
    """Not a benchmark (see `autorag-hp bench-engine`): guards against an accidental 10x slowdown."""
    tuner = Tuner({"a": list(range(10)), "b": list(range(10)), "c": list(range(10))}, policy="hier_ucb")
    start = time.perf_counter()
    for _ in range(2000):
        tuner.report(tuner.suggest().id, 0.5)
    assert time.perf_counter() - start < 5.0


def test_decision_keeps_tuner_fields_apart_from_the_policys_and_reads_stored_logs():
    from autorag_hp.decision import Decision

    d = Decision(number=4, slot=1, batch=3, question="abc", policy={"param": "top_k"})
    assert d.to_info() == {"param": "top_k", "decision": 4, "slot": 1, "batch": 3, "question": "abc"}
    assert Decision.from_info(d.to_info()) == d
    assert d.weight == pytest.approx(1 / 3) and d.batch_open and not d.next_slot().batch_open
    assert d.next_slot().question is None and d.next_slot().policy == {"param": "top_k"}
    assert Decision.from_info({"param": "top_k"}) == Decision(policy={"param": "top_k"})  # a bare policy info
    with pytest.raises(ValueError, match="tuner's keys"):
        Decision(policy={"slot": 2})
    with pytest.raises(ValueError, match="slot < batch"):
        Decision(slot=2, batch=2)
    tuner = Tuner({"a": [1, 2]}, policy="hier_ucb", batch_size=2, seed=0)
    t1, t2 = tuner.suggest(question="q1"), tuner.suggest()
    assert (t1.record.number, t1.record.slot, t2.record.slot) == (0, 0, 1)
    assert t1.record.policy == t2.record.policy and t1.record.question and t2.record.question is None


def test_policy_snapshot_keeps_question_cells_so_a_repeat_still_averages():
    import json

    from autorag_hp.policies import make_policy

    space = SearchSpace({"a": [1, 2]})
    pol = make_policy("hier_ucb", space, seed=0)
    cfg = space.config_at(0)
    pol.observe_decision(cfg, {"decision": 0})
    pol.update(cfg, 1.0, 1.0, {"decision": 0, "question": "q1"})
    twin = make_policy("hier_ucb", space, seed=0)
    twin.load_state_dict(json.loads(json.dumps(pol.state_dict())))
    for p in (pol, twin):
        p.update(cfg, 0.0, 1.0, {"question": "q1"})  # the same cell again: averaged, not a second sample
    assert twin.state_dict() == pol.state_dict()
    assert twin.sample_stats().n[0] == 1.0 and twin.sample_stats().s[0] == pytest.approx(0.5)
