"""Tuner.optimize: Optuna's study.optimize convention (n_trials, timeout, n_jobs, catch, callbacks)."""

from __future__ import annotations

import doctest

import pytest

import autorag_hp.optimize
from autorag_hp import SearchSpace, Tuner

SPACE = SearchSpace({"top_k": [1, 3, 5, 7], "prompt": ["a", "b"]})


def reward(trial) -> float:
    return -abs(trial.config["top_k"] - 5) + (0.5 if trial.config["prompt"] == "b" else 0.0)


def test_the_module_example_runs():
    assert doctest.testmod(autorag_hp.optimize).failed == 0


def test_n_trials_with_threads_reports_every_trial_once_and_finds_the_best(tmp_path):
    seen = []
    with Tuner(SPACE, "ucb", f"sqlite:///{tmp_path / 't.db'}", seed=0) as tuner:
        tuner.optimize(reward, n_trials=40, n_jobs=4, callbacks=[lambda t, trial, r: seen.append((trial.id, r))])
        trials = tuner.trials()
        assert len(trials) == 40 and {t.state for t in trials} == {"reported"}
        assert sorted(tid for tid, _ in seen) == sorted(t.trial_id for t in trials)
        assert tuner.best(1)[0].config.to_dict() == {"top_k": 5, "prompt": "b"}


def test_a_failing_objective_expires_its_trial_and_is_raised_unless_caught():
    tuner = Tuner(SPACE, "random", seed=0)
    calls = []

    def flaky(trial):
        calls.append(trial.id)
        if len(calls) % 2:
            raise RuntimeError("pipeline down")
        return 1.0

    tuner.optimize(flaky, n_trials=6, catch=(RuntimeError,))
    states = [t.state for t in tuner.trials()]
    assert states.count("expired") == 3 and states.count("reported") == 3
    with pytest.raises(RuntimeError, match="pipeline down"):
        tuner.optimize(flaky, n_trials=6)
    assert tuner.trials()[-1].state == "expired" and len(tuner.trials()) == 7


def test_a_grid_stops_when_exhausted_and_bad_arguments_are_refused():
    tuner = Tuner(SPACE, "grid", seed=0)
    tuner.optimize(reward)  # no n_trials, no timeout: until the grid is done
    assert len(tuner.trials()) == SPACE.size
    for kwargs in ({"n_trials": 0}, {"n_trials": 2, "n_jobs": 0}, {"timeout": -1}):
        with pytest.raises(ValueError):
            tuner.optimize(reward, **kwargs)
