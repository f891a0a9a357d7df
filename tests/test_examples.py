"""The examples a user copies from (``examples/``) run, with small arguments, as the user runs them: a script
in a fresh process from the repository root, writing its results where it is told."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    done = subprocess.run([sys.executable, f"examples/{script}", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_optuna_xgboost_beats_the_defaults_and_draws_its_plots(tmp_path):
    pytest.importorskip("xgboost")
    _run("optuna_xgboost.py", "--trials", "12", "--out", str(tmp_path))
    res = json.loads((tmp_path / "results.json").read_text())
    assert {"xgboost_history.png", "xgboost_importances.png", "results.md"} <= {p.name for p in tmp_path.iterdir()}
    assert res["trials"] == 12 and set(res["best_params"]) == {"n_estimators", "max_depth", "learning_rate"}
    assert 0 < res["best_validation_mse"] < res["default_params_validation_mse"]  # 3,473 vs 4,721 at 20 trials
    assert "best of 12 TPE trials" in (tmp_path / "results.md").read_text()


def test_hyperopt_against_grid_writes_its_table_and_plot(tmp_path):
    pytest.importorskip("hyperopt")
    _run("hyperopt_vs_grid.py", "--evals", "10", "--seeds", "0", "--out", str(tmp_path))
    assert {"results.json", "results.md", "best_vs_evals_and_time.png"} <= {p.name for p in tmp_path.iterdir()}


def test_the_wrapped_langchain_chain_of_the_readme_tunes_and_names_its_best():
    pytest.importorskip("langchain_community")
    import re

    out = _run("wrap_langchain_chain.py", "--questions", "2").stdout
    trials = re.findall(r"^trial ([0-9a-f]{16}): '", out, re.M)
    assert len(set(trials)) == 2, out  # one trial per call, each with its own id
    best = re.findall(r"^best: \{'search_kwargs': 'k=[135]', 'temperature': 0\.[07]\} mean=-?\d\.\d{3} n=\d", out, re.M)
    assert best, out  # the knobs print as values (k=3), not as alternative indexes
