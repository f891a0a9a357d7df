"""Reports without a server: ``autorag-hp show`` (terminal table, ``--report DIR``) and ``tune --report``.

A hand-written event log with exact expectations (arm means and their t intervals, which decisions explored,
the best configuration), then the commands on real SQLite studies and a real ``tune`` run (BM25, extractive).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from autorag_hp.cli import main
from autorag_hp.decision import Decision
from autorag_hp.errors import InvalidStorageError, UnknownStudyError
from autorag_hp.reporting import from_tuner, load_study, terminal, write_report
from autorag_hp.reporting.study import infer_space
from autorag_hp.space import Config, SearchSpace
from autorag_hp.storage import MemoryStorage, TrialRecord, open_storage
from autorag_hp.tuner import Tuner

pytest.importorskip("matplotlib")
pytest.importorskip("scipy")


def _log(storage, study="s"):
    """Seven trials over k in {1, 2, 3}: (time, trial, k, decision, slot, batch, policy info, reward time, reward)."""
    storage.open_study(study, SearchSpace({"k": [1, 2, 3]}))
    rows = [
        (1, "a", 1, 0, 0, 1, {}, 2, 0.5),    # nothing reported yet: explored
        (3, "b", 2, 1, 0, 1, {}, 4, 0.9),    # incumbent k=1 -> explored
        (5, "c", 2, 2, 0, 1, {}, 7, 0.1),    # incumbent k=2 -> exploited
        (6, "d", 3, 3, 0, 1, {}, 8, 0.2),    # incumbent k=2 (c not reported yet) -> explored
        (9, "e", 2, 4, 0, 2, {}, 10, 0.8),   # k=2 mean 0.5 over 2 rewards beats k=1's one 0.5 -> exploited
        (9.5, "e2", 2, 4, 1, 2, {}, 11, 0.6),  # slot 1 of decision 4: no decision of its own
        (12, "f", 3, 5, 0, 1, {"explore": False}, None, None),  # the policy says it exploited: taken as said
    ]
    for created, tid, k, number, slot, batch, pol, _, _ in rows:
        cfg = Config({"k": k})
        info = Decision(number=number, slot=slot, batch=batch, policy=pol).to_info()
        storage.suggest(study, TrialRecord(tid, cfg.to_json(), cfg.id, info, created_at=created))
    for *_, at, reward in sorted(rows, key=lambda r: r[7] or 0):
        if at is not None:
            storage.report(study, _[1], reward, at)
    return storage


def test_summaries_of_a_hand_written_log():
    data = load_study(_log(MemoryStorage()), "s", top=3)
    assert [t.trial_id for t in data.trials] == ["a", "b", "c", "d", "e", "e2", "f"]
    assert data.counts() == {"pending": 1, "reported": 6, "expired": 0}
    rows = data.decisions()
    assert [(r.number, r.trial_id, r.explored) for r in rows] == [
        (0, "a", True), (1, "b", True), (2, "c", False), (3, "d", True), (4, "e", False), (5, "f", False)]
    assert data.exploration_share() == 0.5

    arms = data.arm_means()["k"]
    assert [(a.value, a.count) for a in arms] == [(1, 1), (2, 4), (3, 1)]
    two = arms[1]
    x = np.array([0.9, 0.1, 0.8, 0.6])
    half = 3.182446305284263 * x.std(ddof=1) / 2  # t_{0.975, 3} · s / √4
    assert two.mean == pytest.approx(0.6) and (two.lower, two.upper) == pytest.approx((0.6 - half, 0.6 + half))
    assert math.isnan(arms[0].lower) and arms[0].mean == 0.5  # one reward: no interval

    assert data.space_inferred and data.rule == "posterior"
    assert data.best[0].config == Config({"k": 2}) and data.best[0].count == 4
    assert data.best[0].mean == pytest.approx(0.6)


def test_inferred_space_orders_numbers_and_keeps_first_use_of_the_rest():
    trials = [TrialRecord(str(i), Config(c).to_json(), Config(c).id) for i, c in
              enumerate([{"k": 5, "p": "cite"}, {"k": 1, "p": "plain"}, {"k": 3, "p": "cite"}])]
    space = infer_space(trials)
    assert space["k"].values == (1, 3, 5) and space["p"].values == ("cite", "plain")


def _tuned(url, study="t", n=60):
    tuner = Tuner({"top_k": [1, 3, 5], "prompt": ["concise", "cite"]}, policy="hier_ucb", storage=url, seed=0,
                  study=study, batch_size=2)
    rng = np.random.default_rng(0)
    for i in range(n):
        t = tuner.suggest(question=f"q{i % 15}")
        c = t.config
        tuner.report(t.id, 0.1 * c["top_k"] + (0.3 if c["prompt"] == "cite" else 0.0) + float(rng.normal(0, 0.1)))
    return tuner


def test_incremental_incumbent_matches_a_brute_force_scan():
    tuner = _tuned(None, n=200)  # memory: every report is 1 µs or more after its suggestion, on the real clock
    data = from_tuner(tuner)
    trials = data.trials
    for row in data.decisions():
        before = [t for t in trials if t.state == "reported" and t.reported_at <= row.created_at]
        groups: dict[str, list[float]] = {}
        for t in before:
            groups.setdefault(t.config, []).append(t.reward)
        ranked = sorted(groups, key=lambda c: (-np.mean(groups[c]), -len(groups[c]), Config.from_json(c).id))
        incumbent = ranked[0] if ranked else None
        assert row.explored == (row.config.to_json() != incumbent)


def test_show_prints_a_table_and_writes_a_report(tmp_path, capsys):
    from matplotlib.image import imread

    url = f"sqlite:///{tmp_path / 'study.db'}"
    tuner = _tuned(url)
    live, stored = from_tuner(tuner), load_study(url, "t")
    assert [t.trial_id for t in live.trials] == [t.trial_id for t in stored.trials]
    def by_value(d):  # the stored study's space is inferred: same values, perhaps in another order
        return {(a.param, a.value): a for rows in d.arm_means().values() for a in rows}

    assert by_value(live) == by_value(stored)
    assert live.decisions() == stored.decisions()
    assert live.best[0].config == tuner.best(1)[0].config  # the policy's own recommendation, as tune prints it
    tuner.close()

    assert main(["show", "--storage", url]) == 0  # its only study
    out = capsys.readouterr().out
    assert "study 't'" in out and "60 reported" in out and "30 decisions" in out and "exploration share" in out
    assert "Best configurations" in out and "Arm means per parameter" in out
    assert out.count("top_k ") >= 3 and "prompt=cite" in out

    rep = tmp_path / "rep"
    assert main(["show", "--storage", url, "--study", "t", "--report", str(rep)]) == 0
    md = (rep / "report.md").read_text()
    for png in ("arms.png", "reward.png", "exploration.png"):
        assert f"]({png})" in md
        img = imread(rep / png)
        assert img.shape[0] > 300 and img.shape[1] > 600 and float(img[..., :3].std()) > 0.05  # drawn, not blank
    assert "| 1 |" in md and "autorag-hp show" in md


def test_show_errors_name_the_fix(tmp_path, capsys):
    missing = f"sqlite:///{tmp_path / 'typo.db'}"
    assert main(["show", "--storage", missing]) == 2
    assert "no SQLite database at" in capsys.readouterr().err and not (tmp_path / "typo.db").exists()
    with pytest.raises(InvalidStorageError):
        load_study(missing, "t")
    url = f"sqlite:///{tmp_path / 'two.db'}"
    with open_storage(url) as st:
        _log(st, "one")
        _log(st, "two")
        st.open_study("empty", SearchSpace({"k": [1]}))
    assert main(["show", "--storage", url]) == 2
    assert "holds 3 studies (one, two, empty); pick one with --study" in capsys.readouterr().err
    assert main(["show", "--storage", url, "--study", "nope"]) == 2
    assert "no study 'nope'" in capsys.readouterr().err
    with pytest.raises(UnknownStudyError, match="has no trials yet"):
        load_study(url, "empty")


def test_terminal_and_report_of_a_log_with_pending_trials_only(tmp_path):
    st = MemoryStorage()
    st.open_study("p", SearchSpace({"k": [1, 2]}))
    for i, k in enumerate([1, 2]):
        cfg = Config({"k": k})
        st.suggest("p", TrialRecord(f"t{i}", cfg.to_json(), cfg.id, Decision(number=i).to_info(), created_at=i))
    data = load_study(st, "p")
    assert "0 reported, 2 pending" in terminal(data) and data.best == []
    files = write_report(data, tmp_path / "r")
    assert [f.name for f in files] == ["report.md", "arms.png", "reward.png", "exploration.png"]


def test_tune_writes_the_same_report(tmp_path, capsys):
    pytest.importorskip("langchain_text_splitters")
    rep = tmp_path / "tune-report"
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    rc = main(["tune", "--pipeline", "demo", "--generator", "extractive", "--set", "embedding=bm25", "--questions", "12",
               "--no-progress", "--cache-dir", str(tmp_path / "cache"), "--storage", url, "--report", str(rep)])
    assert rc == 0
    md = (rep / "report.md").read_text()
    assert "12 reported" in md and "policy hier_ucb" in md and "autorag-hp tune --pipeline demo" in md
    assert all((rep / p).stat().st_size > 10_000 for p in ("arms.png", "reward.png", "exploration.png"))
    capsys.readouterr()
    assert main(["show", "--storage", url, "--study", "tune"]) == 0  # the same study, read back from storage
    assert "12 reported" in capsys.readouterr().out


@pytest.mark.postgres
def test_show_and_optuna_export_from_postgresql(pg_url, unique_name, tmp_path, capsys):
    """The same reader on PostgreSQL: keyset pages smaller than the study, a study shared with others."""
    from autorag_hp.reporting.study import read_trials

    tuner = _tuned(pg_url, study=unique_name, n=30)
    assert [t.trial_id for t in read_trials(tuner.storage, unique_name, page=7)] == [t.trial_id for t in tuner.trials()]
    tuner.close()
    assert main(["show", "--storage", pg_url, "--study", unique_name]) == 0
    assert "30 reported" in capsys.readouterr().out
    pytest.importorskip("optuna")
    from autorag_hp.export import to_optuna

    assert len(to_optuna(pg_url, unique_name, str(tmp_path / "o.db")).trials) == 30
