"""MLflow logging (the ``mlflow`` extra): one run per study, metrics per decision, against local stores (a
``file:`` store and a ``sqlite:`` one), read back with MLflow's own client."""

from __future__ import annotations

import pytest

from autorag_hp.cli import main
from autorag_hp.tuner import Tuner

mlflow = pytest.importorskip("mlflow")

SPACE = {"top_k": [1, 3, 5], "prompt": ["concise", "cite"]}


def _tracking(kind: str, tmp_path, monkeypatch) -> str:
    if kind == "file":  # MLflow 3 keeps its file store only on request
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        return (tmp_path / "mlruns").as_uri()
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_one_run_per_study_with_metrics_per_decision(kind, tmp_path, monkeypatch):
    from autorag_hp.integrations.mlflow import MLflowLogger

    uri = _tracking(kind, tmp_path, monkeypatch)
    now = [1_800_000_000.0]
    tuner = Tuner(SPACE, policy="epsilon_greedy", seed=0, batch_size=2, clock=lambda: now[0],
                  policy_params={"epsilon": 0.5})
    rewards = []
    for i in range(12):  # 6 decisions of 2 trials
        t = tuner.suggest()
        now[0] += 1.0
        rewards.append(t.config["top_k"] / 5 + (0.1 if i % 2 else 0.0))
        tuner.report(t.id, rewards[-1])
    logger = MLflowLogger(tuner, tracking_uri=uri)
    assert logger.sync() == 6
    client = mlflow.tracking.MlflowClient(uri)
    run = client.get_run(logger.run_id)
    assert run.info.run_name == "default" and run.data.tags["autorag_hp.study"] == "default"
    assert run.data.params["policy"] == "epsilon_greedy" and run.data.params["batch_size"] == "2"
    assert run.data.params["space.top_k"] == "[1, 3, 5]"
    want = [(d, (rewards[2 * d] + rewards[2 * d + 1]) / 2) for d in range(6)]  # the batch's mean
    got = _history(client, logger.run_id, "reward")
    assert [s for s, _ in got] == [s for s, _ in want]
    assert [v for _, v in got] == pytest.approx([v for _, v in want])
    share = _history(client, logger.run_id, "exploration_share")
    explored = _history(client, logger.run_id, "explored")
    assert [s for s, _ in share] == list(range(6)) and share[-1][1] == pytest.approx(sum(v for _, v in explored) / 6)
    assert 0 < sum(v for _, v in explored) < 6  # the policy's own flags: some decisions explored, some not
    assert _history(client, logger.run_id, "mean_reward")[-1][1] == pytest.approx(sum(rewards) / 12)
    assert run.data.tags["best.top_k"] == str(tuner.best(1)[0].config["top_k"])

    # more decisions, one left open: a second logger finds the same run and logs only the settled new ones
    for _ in range(3):
        t = tuner.suggest()
        tuner.report(t.id, 0.5)
    again = MLflowLogger(tuner, tracking_uri=uri)
    assert again.sync() == 1 and again.run_id == logger.run_id  # decision 7 waits for its second trial
    assert again.sync() == 0
    t = tuner.suggest()
    tuner.report(t.id, 0.7)
    again()  # a callback: logs decision 7
    assert [s for s, _ in _history(client, logger.run_id, "reward")] == list(range(8))
    assert len(client.search_runs([run.info.experiment_id])) == 1


def test_export_format_mlflow_from_storage(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'tuning.db'}"
    tuner = Tuner(SPACE, policy="ucb", storage=url, study="rag", seed=0)
    for _ in range(8):
        t = tuner.suggest()
        tuner.report(t.id, t.config["top_k"] / 5)
    tuner.close()
    uri = _tracking("sqlite", tmp_path, monkeypatch)
    assert main(["export", "--storage", url, "--study", "rag", "--format", "mlflow", "--to", uri]) == 0
    assert "logged 8 decisions of study 'rag' to MLflow run" in capsys.readouterr().err
    client = mlflow.tracking.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("rag").experiment_id])
    assert [s for s, _ in _history(client, run.info.run_id, "reward")] == list(range(8))
    assert "space.top_k" in run.data.tags  # inferred from the trials: a tag, which may grow
    assert main(["export", "--storage", url, "--study", "rag", "--format", "mlflow", "--to", uri]) == 0
    assert "logged 0 decisions" in capsys.readouterr().err
    assert main(["export", "--storage", url, "--study", "rag", "--format", "mlflow", "--to", uri, "--replace"]) == 2
