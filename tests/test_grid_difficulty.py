"""Difficulty of a grid (gaps between top configurations vs per-question noise) on a hand-made table."""

from __future__ import annotations

import math

import pytest

from autorag_hp.evaluation.difficulty import difficulty, report, to_markdown
from autorag_hp.evaluation.rewards import WeightedSumReward

SCORES = {"A": [1, 1, 1, 1], "B": [1, 0, 1, 0], "C": [0, 0, 1, 0], "D": [0, 0, 0, 0]}


def rows(scores=SCORES, tokens=100):
    return [{"config_id": c, "config": {"k": c}, "question_id": f"q{i}", "metrics": {"token_f1": float(v)},
             "prompt_tokens": tokens, "completion_tokens": 0, "latency_s": 0.1}
            for c, vs in scores.items() for i, v in enumerate(vs)]


def test_difficulty_exact_values():
    d = difficulty(rows(), WeightedSumReward({"token_f1": 1.0}), top=2, budget_fraction=0.5)
    sigma = math.sqrt((0 + 1 / 3 + 0.25 + 0) / 4)
    se = sigma / math.sqrt(2)
    assert d["sigma_per_question"] == pytest.approx(sigma)
    assert d["se"] == pytest.approx(se)
    assert d["gap"] == pytest.approx(1.0)
    assert d["rho"] == pytest.approx(1.0 / se)
    assert d["label"] == "medium"  # ρ ≈ 3.70
    assert d["contenders"] == 2  # B (the boundary itself) and C are within one se of it
    assert [t["config"]["k"] for t in d["top"]] == ["A", "B"]


def test_incomplete_questions_are_left_out_and_labels_move_with_noise():
    r = rows() + [{"config_id": "A", "config": {"k": "A"}, "question_id": "extra", "metrics": {"token_f1": 0.0},
                   "prompt_tokens": 1, "completion_tokens": 0, "latency_s": 0}]
    d = difficulty(r, WeightedSumReward({"token_f1": 1.0}), top=2, budget_fraction=0.5)
    assert d["questions"] == 4
    clear = {"A": [1] * 8, "B": [0.9] * 8, "C": [0] * 8, "D": [0.1] * 8}
    noisy = {"A": [1, 0] * 4, "B": [0, 1] * 4, "C": [1, 0] * 4, "D": [0, 1] * 4}
    assert difficulty(rows(clear), WeightedSumReward({"token_f1": 1.0}), top=2)["label"] == "easy"
    assert difficulty(rows(noisy), WeightedSumReward({"token_f1": 1.0}), top=2)["label"] == "hard"


def test_report_over_weights():
    rep = report(rows(), metric="token_f1", threshold=0.5, ws=(0.1, 0.9), top=2)
    assert rep["t_max"] == 100 and set(rep["by_w"]) == {"0.1", "0.9"}
    # equal tokens everywhere: the ordering is by accuracy for every w, the reward scale shrinks with w
    assert rep["by_w"]["0.9"]["top"][0]["config"] == {"k": "A"}
    assert "w" in to_markdown(rep)
    # a table seeded with --import counts the imported runs' wall time and runs too
    own = {"rows": 8, "llm_calls": 6, "answers_reused": 2, "wall_s": 1800.0, "runs": 1}
    assert "wall time: 0.50 h over 1 run(s)" in to_markdown(rep, own)
    assert "wall time: 1.50 h over 3 run(s)" in to_markdown(rep, own, {"wall_s": 3600.0, "runs": 2})


def test_report_command_on_an_export(tmp_path, capsys):
    from pathlib import Path

    from autorag_hp.cli import main
    from autorag_hp.evaluation.grid import run_grid

    toy = str(Path(__file__).resolve().parent / "test_grid_toy.py") + ":make_pipeline"
    run_grid(toy, tmp_path / "g.sqlite", export=tmp_path / "g.jsonl.gz", progress=False, log=lambda m: None)
    md = tmp_path / "report.md"
    assert main(["grid", "--report", str(tmp_path / "g.jsonl.gz"), "--metric", "token_f1", "--threshold", "0.3",
                 "--md", str(md)]) == 0
    text = md.read_text()
    assert "| 0.5 | 8 | 32 |" in text and "Top configurations at w = 0.9" in text
    assert text in capsys.readouterr().out
