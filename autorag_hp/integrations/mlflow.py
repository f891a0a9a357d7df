"""MLflow logging (the optional ``mlflow`` extra): one MLflow run per study, metrics per decision.

:class:`MLflowLogger` reads a study through the storage's public listing and logs, for each settled decision
(none of its trials pending, and its batch complete or followed by a later decision), at ``step`` = the
decision's number and its time:

* ``reward``: the mean reward of the decision's reported trials (its batch);
* ``explored``: 1 when the decision explored, else 0 (:meth:`StudyData.decisions
  <autorag_hp.reporting.study.StudyData.decisions>`);
* ``mean_reward``: the mean of every reward logged so far; ``exploration_share``: the share of the decisions
  logged so far that explored.

The run is found again by its tag ``autorag_hp.study`` in the experiment (default: the study's name), so
calling :meth:`MLflowLogger.sync` again, from this process or a later one, continues the same run and logs only
the decisions settled since. From a live tuner the run's parameters are the space (``space.<name>``), policy,
its parameters, batch size and seed; from a storage the space is inferred from the trials and goes into tags.
The tags ``best.<name>`` hold the current best configuration and ``best.mean`` its mean. A logger
is also a callback (``logger(*anything)`` syncs), as Optuna's ``study.optimize(callbacks=...)`` calls them.

    logger = MLflowLogger(tuner, tracking_uri="sqlite:///mlflow.db")   # while tuning: call logger() now and then
    log_study("sqlite:///tuning.db", "tune", tracking_uri="sqlite:///mlflow.db")   # afterwards, from storage
    # the same: autorag-hp export --storage sqlite:///tuning.db --study tune --format mlflow --to sqlite:///mlflow.db

MLflow 3 keeps a ``file:`` tracking store only with ``MLFLOW_ALLOW_FILE_STORE=true`` in the environment; a
``sqlite:`` URI is its recommended local store.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from autorag_hp.decision import Decision
from autorag_hp.storage import PENDING, REPORTED, Storage

if TYPE_CHECKING:  # pragma: no cover
    from autorag_hp.tuner import Tuner

STUDY_TAG = "autorag_hp.study"
SOURCE_TAG = "autorag_hp.source"


def _mlflow():
    from autorag_hp.deps import require

    return require("mlflow", "logging a study to MLflow")


class MLflowLogger:
    """Log a study to one MLflow run at ``tracking_uri`` (default: MLflow's own, ``$MLFLOW_TRACKING_URI``), in
    ``experiment`` (default: the study's name). ``source``: a live :class:`~autorag_hp.tuner.Tuner` (its study,
    space and policy: logged as run parameters, with the policy's own best), or a Storage / storage URL with
    ``study`` (the space, inferred from the trials, goes into tags, which may grow, not parameters)."""

    def __init__(self, source: Tuner | Storage | str, study: str | None = None, *, tracking_uri: str | None = None,
                 experiment: str | None = None):
        from autorag_hp.reporting.study import open_existing
        from autorag_hp.tuner import Tuner

        mlflow = _mlflow()
        self.tuner = source if isinstance(source, Tuner) else None
        if self.tuner is not None:
            if study not in (None, self.tuner.study):
                raise ValueError(f"study={study!r} differs from the tuner's study {self.tuner.study!r}; leave it out")
            study, storage = self.tuner.study, self.tuner.storage
        else:
            storage = source
        self._owns_storage = isinstance(storage, str)
        self.storage = open_existing(storage)
        self.study = study or "default"
        self.experiment = experiment or study
        self.client = mlflow.tracking.MlflowClient(tracking_uri)
        self._run_id: str | None = None
        self.logged = -1  # the last decision number logged to the run

    @property
    def run_id(self) -> str:
        """The study's run (created on first use, found again by its tag afterwards)."""
        if self._run_id is None:
            self._run_id, self.logged = self._find_or_create_run()
        return self._run_id

    def _find_or_create_run(self) -> tuple[str, int]:
        exp = self.client.get_experiment_by_name(self.experiment)
        exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(self.experiment)
        runs = self.client.search_runs([exp_id], filter_string=f"tags.`{STUDY_TAG}` = '{_quote(self.study)}'",
                                       max_results=1)
        if runs:
            run = runs[0]
            history = self.client.get_metric_history(run.info.run_id, "reward")
            return run.info.run_id, max((m.step for m in history), default=-1)
        from autorag_hp.reporting.study import masked

        run = self.client.create_run(exp_id, run_name=self.study,
                                     tags={STUDY_TAG: self.study, SOURCE_TAG: masked(self.storage.url)})
        return run.info.run_id, -1

    def sync(self) -> int:
        """Log the decisions settled since the last sync; return how many were logged."""
        from mlflow.entities import Metric, Param, RunTag

        from autorag_hp.reporting.study import StudyData, from_tuner, load_study

        try:
            data: StudyData = from_tuner(self.tuner) if self.tuner is not None else load_study(self.storage, self.study)
        except KeyError:  # UnknownStudyError for a study with no trials yet: nothing to log
            if self.study not in self.storage.studies():
                raise
            return 0
        run_id = self.run_id
        by_decision: dict[int, list] = {}
        for t in data.trials:
            d = Decision.from_info(t.info)
            if d.number is not None:
                by_decision.setdefault(d.number, []).append(t)
        metrics: list[Any] = []
        n_rewards, reward_sum, n_decisions, n_explored = 0, 0.0, 0, 0
        count = 0
        rows = data.decisions()
        for i, row in enumerate(rows):
            trials = by_decision.get(row.number, [])
            batch = Decision.from_info(trials[0].info).batch if trials else 1
            if any(t.state == PENDING for t in trials) or (len(trials) < batch and i == len(rows) - 1):
                break  # its batch is still open; steps stay in order, so later decisions wait for it
            rewards = [float(t.reward) for t in trials if t.state == REPORTED]
            n_rewards += len(rewards)
            reward_sum += sum(rewards)
            n_decisions += 1
            n_explored += row.explored
            if row.number <= self.logged:
                continue
            ms = int(row.created_at * 1000)
            values = {"explored": float(row.explored), "exploration_share": n_explored / n_decisions,
                      "reward": sum(rewards) / len(rewards) if rewards else math.nan,
                      "mean_reward": reward_sum / n_rewards if n_rewards else math.nan}
            metrics += [Metric(k, v, ms, row.number) for k, v in values.items() if not math.isnan(v)]
            self.logged = row.number
            count += 1
        space = {f"space.{name}": str(list(data.space[name].values)) for name in data.space.names}
        params, tags = [], []
        if self.tuner is not None:  # the study's own space and policy: fixed, so run parameters
            space.update({"policy": data.policy, "policy_params": str(self.tuner.policy.params()),
                          "batch_size": str(self.tuner.batch_size), "seed": str(self.tuner.seed)})
            logged = self.client.get_run(run_id).data.params
            params = [Param(k, v) for k, v in space.items() if k not in logged]  # a parameter cannot change
        else:  # inferred from the trials: grows as new values are tried
            tags = [RunTag(k, v) for k, v in space.items()]
        if data.best and data.best[0].mean is not None:
            tags += [RunTag(f"best.{k}", str(v)) for k, v in data.best[0].config.items()]
            tags.append(RunTag("best.mean", f"{data.best[0].mean:.6g}"))
        for i in range(0, max(len(metrics), 1), 1000):  # MLflow takes at most 1,000 metrics per batch
            self.client.log_batch(run_id, metrics=metrics[i:i + 1000], params=params if i == 0 else [],
                                  tags=tags if i == 0 else [])
        return count

    def __call__(self, *_: Any, **__: Any) -> None:
        self.sync()

    def close(self) -> None:
        """Close the storage if this logger opened it (from a URL)."""
        if self._owns_storage:
            self.storage.close()


def log_study(source: Tuner | Storage | str, study: str | None = None, *, tracking_uri: str | None = None,
              experiment: str | None = None) -> str:
    """Log a study to its MLflow run (see :class:`MLflowLogger`); return the run id."""
    logger = MLflowLogger(source, study, tracking_uri=tracking_uri, experiment=experiment)
    try:
        logger.sync()
        return logger.run_id
    finally:
        logger.close()


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")
