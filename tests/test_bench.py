"""``autorag-hp bench`` end to end on tiny tables: a grid table file in, a report and plots out."""

import json

import pytest

from autorag_hp import SearchSpace
from autorag_hp.cli import main
from autorag_hp.evaluation.replay import ReplayTable
from autorag_hp.evaluation.table import GridTable

SPACE = SearchSpace({"retrieval": {"top_k": [1, 3]}, "generation": {"prompt": ["a", "b", "c"]}})


def _write_table(path, n_questions=8, partial=False):
    t = GridTable.open(str(path), space=SPACE)
    rows = []
    for i, cfg in enumerate(SPACE.configs()):
        for j in range(n_questions):
            if partial and i == 0 and j == n_questions - 1:
                continue
            acc = float((i + j) % 3 != 0 or i == 5)
            rows.append({"config_id": cfg.id, "question_id": f"q{j:02d}", "config": cfg.to_dict(),
                         "question": f"question {j}?", "answer": "x", "contexts": [],
                         "metrics": {"answer_contains_reference": acc, "total_tokens": 50 * (i + 1)},
                         "prompt_tokens": 40 * (i + 1), "completion_tokens": 10 * (i + 1)})
    t.add_rows(rows)
    return t


def test_bench_on_a_table_file_writes_report_json_and_plots(tmp_path, capsys):
    db = tmp_path / "grid.sqlite"
    t = _write_table(db, partial=True)
    export = t.export(tmp_path / "grid.jsonl.gz")
    out = tmp_path / "bench"
    rc = main(["bench", "--table", str(export), "--policies", "grid,random,hier_ucb,additive_lucb,additive_lucb@mean",
               "--w", "0.1,0.9", "--seeds", "3", "--step", "0.25", "--out", str(out), "--no-progress",
               "--snapshot", str(tmp_path / "snap.jsonl.gz")])
    assert rc == 0
    md = (out / "report.md").read_text()
    assert "Table 1" in md and "| additive_lucb@mean |" in md and "partial table: 7 of 8 questions" in md
    from autorag_hp.evaluation.cpu_kinds import describe_cpu, this_cpu

    here = describe_cpu(this_cpu())  # the run time names the CPU it was measured on
    assert "Replay run time: " in md and f" s on {here} (all methods" in md and here.count("(") == 1
    data = json.loads((out / "results.json").read_text())
    assert data["grid_calls"] == 6 * 7 and data["settings"] == ["w=0.1", "w=0.9"]
    assert data["runs"]["grid|w=0.9"]["recall@5"]["mean"][-1] == 1.0
    assert (out / "recall_w0.9.png").stat().st_size > 1000 and (out / "served_w0.1.png").exists()
    # the same table read straight from SQLite gives the same matrix
    a = ReplayTable.load(export).reward_matrix(0.5)
    b = ReplayTable.load(db).reward_matrix(0.5)
    assert (a == b).all()
    # the snapshot holds exactly the block used: 6 configurations x 7 complete questions
    snap = ReplayTable.load(tmp_path / "snap.jsonl.gz")
    assert snap.note == "" and (snap.reward_matrix(0.5) == a).all()


def test_bench_rejects_unknown_policies(capsys):
    assert main(["bench", "--synthetic", "--policies", "grid,nope", "--out", "/nonexistent"]) == 2
    assert "unknown policy 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_synthetic_with_every_policy(tmp_path):
    out = tmp_path / "syn"
    rc = main(["bench", "--synthetic", "--synthetic-questions", "20", "--seeds", "2", "--step", "0.1",
               "--max-budget", "0.3", "--tpe-seeds", "1", "--tpe-max-budget", "0.1", "--out", str(out),
               "--no-progress", "--no-plots"])
    assert rc == 0
    data = json.loads((out / "results.json").read_text())
    assert set(data["methods"]) >= {"grid", "random", "ucb", "thompson", "hier_ucb", "hier_ts", "optuna_tpe",
                                    "additive_lucb"}
