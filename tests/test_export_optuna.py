"""``autorag-hp export --format optuna``: a stored study's trials in a real Optuna study (SQLite), opened with
Optuna (importance, states, attrs, times) and shown by optuna-dashboard in a real headless Chromium."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import io
import json
import threading

import numpy as np
import pytest
from browser_support import chromium_binary, render

from autorag_hp.cli import main
from autorag_hp.errors import AutoRAGHPError
from autorag_hp.export import to_optuna
from autorag_hp.tuner import Tuner

optuna = pytest.importorskip("optuna")

SPACE = {"prompt": ["concise", "cite", "plain"], "top_k": [1, 3, 5], "temperature": [0.0, 0.7]}
EFFECT = {"cite": 0.6, "concise": 0.3, "plain": 0.0}  # prompt matters most, top_k a little, temperature not at all


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A random-search study of 80 reported trials on SQLite, then one that expired and one still pending."""
    url = f"sqlite:///{tmp_path_factory.mktemp('export') / 'tuning.db'}"
    now = [1_800_000_000.0]
    tuner = Tuner(SPACE, policy="random", storage=url, study="rag", seed=0, trial_timeout=30, clock=lambda: now[0])
    rng = np.random.default_rng(0)
    for i in range(80):
        t = tuner.suggest(question=f"q{i % 20}", owner="web" if i % 2 else None)
        now[0] += 1.5
        tuner.report(t.id, EFFECT[t.config["prompt"]] + 0.02 * t.config["top_k"] + float(rng.normal(0, 0.05)))
        now[0] += 0.5
    late = tuner.suggest()
    now[0] += 31
    pending = tuner.suggest()  # expires the first on its way
    trials = tuner.trials()
    tuner.close()
    return url, trials, late.id, pending.id


@pytest.fixture(scope="module")
def exported(stored, tmp_path_factory):
    """``stored`` exported once by the CLI (Optuna adds a trial in ~40 ms): the Optuna URL and what it printed.
    The tests below only read it."""
    target = f"sqlite:///{tmp_path_factory.mktemp('optuna') / 'optuna.db'}"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["export", "--storage", stored[0], "--study", "rag", "--format", "optuna", "--to", target])
    return rc, target, err.getvalue()


@pytest.fixture
def small(tmp_path):
    """A study of three reported trials: what the refusals need (each export of ``stored`` costs seconds)."""
    url = f"sqlite:///{tmp_path / 'small.db'}"
    tuner = Tuner(SPACE, policy="random", storage=url, study="rag", seed=0)
    for _ in range(3):
        tuner.report(tuner.suggest().id, 0.5)
    tuner.close()
    return url


def test_export_writes_trials_that_optuna_can_analyse(stored, exported):
    url, trials, late, pending = stored
    rc, target, err = exported
    assert rc == 0
    assert "exported 82 trials of study 'rag' into Optuna study 'rag'" in err

    study = optuna.load_study(study_name="rag", storage=target)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE and study.metric_names == ["reward"]
    assert study.user_attrs["source_study"] == "rag" and study.user_attrs["exported_by"] == "autorag-hp"
    best = study.user_attrs["best_configurations"]
    assert best[0]["config"]["prompt"] == "cite" and best[0]["lower"] < best[0]["mean"] < best[0]["upper"]
    got = study.get_trials(deepcopy=False)
    assert [t.user_attrs["trial_id"] for t in got] == [t.trial_id for t in trials]
    State = optuna.trial.TrialState
    for ours, theirs in zip(trials, got):
        assert theirs.params == json.loads(ours.config)
        assert set(theirs.distributions) == set(SPACE)
        assert all(isinstance(d, optuna.distributions.CategoricalDistribution) for d in theirs.distributions.values())
        assert theirs.user_attrs.get("client") == ours.owner and theirs.user_attrs["created_at"] == ours.created_at
        assert theirs.user_attrs.get("expires_at") == ours.expires_at == ours.created_at + 30
        assert theirs.user_attrs.get("reported_at") == ours.reported_at
        assert theirs.datetime_start == dt.datetime.fromtimestamp(ours.created_at)
        if ours.state == "reported":
            assert theirs.state == State.COMPLETE and theirs.value == ours.reward
            assert theirs.datetime_complete == dt.datetime.fromtimestamp(ours.reported_at)
            assert {"decision", "slot", "batch", "question"} <= set(theirs.user_attrs)
    assert got[-2].user_attrs["trial_id"] == late and got[-2].state == State.FAIL
    assert got[-1].user_attrs["trial_id"] == pending and got[-1].state == State.RUNNING
    choices = got[0].distributions["prompt"].choices
    assert sorted(choices) == sorted(SPACE["prompt"])

    # Optuna's own importance evaluator (fANOVA, fixed seed) finds what the rewards were made of
    imp = optuna.importance.get_param_importances(study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    assert list(imp)[0] == "prompt" and imp["prompt"] > 0.8, imp
    assert imp["top_k"] > imp["temperature"], imp
    assert study.best_trial.params["prompt"] == "cite"
    if importlib.util.find_spec("plotly") is not None:  # optuna.visualization draws with plotly
        from optuna import visualization

        assert len(visualization.plot_slice(study).data) == len(SPACE)  # one panel per knob
        assert len(visualization.plot_contour(study, params=["prompt", "top_k"]).data) >= 1


def test_export_refuses_to_add_twice_unless_replaced(small, tmp_path, capsys):
    url = small
    target = str(tmp_path / "o.db")  # a path works too
    to_optuna(url, "rag", target, optuna_study="copy")
    with pytest.raises(AutoRAGHPError, match=r"exists already .*\(3 trials\); pass --replace"):
        to_optuna(url, "rag", target, optuna_study="copy")
    assert len(to_optuna(url, "rag", target, optuna_study="copy", replace=True).trials) == 3
    assert main(["export", "--storage", url, "--study", "rag", "--format", "optuna", "--to", target,
                 "--name", "copy"]) == 2
    assert "pass --replace" in capsys.readouterr().err
    assert main(["export", "--storage", url, "--study", "rag", "--format", "optuna"]) == 2
    assert "needs --to (e.g. --to sqlite:///optuna.db)" in capsys.readouterr().err
    assert main(["export", "--storage", url, "--study", "rag", "--to", target]) == 2
    assert "--to is for --format optuna or mlflow" in capsys.readouterr().err
    assert main(["export", "--storage", url, "--study", "nope", "--format", "optuna", "--to", target]) == 2
    assert "no study 'nope'" in capsys.readouterr().err
    assert main(["export", "--storage", url, "--format", "optuna", "--to", target, "--name", "only"]) == 0
    assert "of study 'rag' into Optuna study 'only'" in capsys.readouterr().err  # the storage's only study
    typo = tmp_path / "typo.db"
    assert main(["export", "--storage", f"sqlite:///{typo}", "--format", "optuna", "--to", target]) == 2
    assert "no SQLite database at" in capsys.readouterr().err and not typo.exists()


def test_optuna_dashboard_shows_the_export_in_headless_chromium(exported, tmp_path):
    dashboard = pytest.importorskip("optuna_dashboard")
    binary = chromium_binary()
    if binary is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium); the page test needs it")
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    target = exported[1]
    server = make_server("127.0.0.1", 0, dashboard.wsgi(target), handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = f"http://127.0.0.1:{server.server_port}/dashboard/studies/1"
        html, _ = render(binary, page, tmp_path / "optuna_dashboard.png", size="1400,1000", min_bytes=30_000)
        # the study page rendered: history of the reward, the importance plot over our three knobs, best trial
        assert "History" in html and ">reward<" in html and "Best Trial" in html, html[-3000:]
        assert "Hyperparameter Importance" in html and all(p in html for p in SPACE)
    finally:
        server.shutdown()
        server.server_close()
