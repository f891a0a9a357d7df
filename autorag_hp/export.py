"""A stored study's trials in Optuna's tools: ``autorag-hp export --format optuna`` and :func:`to_optuna`.

Each trial becomes one Optuna trial of a study with direction ``maximize`` and the metric name ``reward``:

* **params**: its configuration, each parameter with a :class:`optuna.distributions.CategoricalDistribution`
  over the study's values (the same choices for every trial, so Optuna's importance evaluators, samplers and
  plots treat the space as the categorical grid it is);
* **value**: its reward; state ``COMPLETE`` when reported, ``FAIL`` when it expired unreported, ``RUNNING``
  while pending;
* **datetime_start / datetime_complete**: when it was handed out and reported (expired: its deadline), in local
  time as Optuna keeps its own;
* **user_attrs**: ``trial_id``, ``client`` (the trial's owner), ``created_at``, ``reported_at``, ``expires_at``
  (Unix seconds, exact), and everything the trial recorded of its decision (``decision``, ``slot``, ``batch``,
  ``question`` and the policy's own keys, e.g. ``param``, ``explore``); those without a value are left out.
  The trials' stored record has no latency or token counts, so neither does the export.

Cost: Optuna's RDB storage writes each trial, parameter and attr through its ORM, one trial per transaction:
18-19 ms per trial on SQLite on a shared 2-vCPU AMD EPYC VM (600 trials in 11.5 s), CPU-bound, not fsync-bound.

The study's user attrs say where it came from (the source storage with its password masked, the study name,
the space) and hold the best configurations by their mean reward with 95 % intervals (``best_configurations``):
Optuna's own "best trial" is the single luckiest reward, one question's, not a configuration's mean. Then ``optuna-dashboard sqlite:///optuna.db``, ``optuna.visualization`` and
``optuna.importance.get_param_importances`` work on RAG tuning.

>>> from autorag_hp import Tuner
>>> tuner = Tuner({"top_k": [1, 3, 5], "prompt": ["concise", "cite"]}, policy="random", seed=0)
>>> for _ in range(12):
...     t = tuner.suggest()
...     tuner.report(t.id, t.config["top_k"] / 5)
>>> study = to_optuna(tuner.storage, tuner.study, "sqlite:///:memory:")
>>> len(study.trials), study.trials[0].distributions["top_k"].choices
(12, (1, 3, 5))
"""

from __future__ import annotations

import datetime as dt
import warnings
from typing import TYPE_CHECKING, Any

from autorag_hp.reporting.study import StudyData, load_study, masked
from autorag_hp.storage import EXPIRED, REPORTED, Storage

if TYPE_CHECKING:  # pragma: no cover
    import optuna


def _time(t: float | None) -> dt.datetime | None:
    return None if t is None else dt.datetime.fromtimestamp(t)  # naive local time, as Optuna stores its own


def frozen_trials(data: StudyData) -> list[optuna.trial.FrozenTrial]:
    """The study's trials as Optuna ``FrozenTrial`` objects, in creation order (see the module doc)."""
    from autorag_hp.deps import require

    require("optuna", "exporting a study to Optuna")
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import FrozenTrial, TrialState

    dists = {name: CategoricalDistribution(list(data.space[name].values)) for name in data.space.names}
    out = []
    for number, (t, cfg) in enumerate(data.configs()):
        attrs: dict[str, Any] = {**t.info, "trial_id": t.trial_id, "client": t.owner, "created_at": t.created_at,
                                 "reported_at": t.reported_at, "expires_at": t.expires_at}
        attrs = {k: v for k, v in attrs.items() if v is not None}  # one row each in Optuna's storage: none empty
        if t.state == REPORTED:
            state, value, end = TrialState.COMPLETE, float(t.reward), t.reported_at
        elif t.state == EXPIRED:
            state, value, end = TrialState.FAIL, None, t.expires_at if t.expires_at is not None else t.created_at
        else:
            state, value, end = TrialState.RUNNING, None, None
        params = dict(cfg.items())
        out.append(FrozenTrial(
            number=number, state=state, value=value, datetime_start=_time(t.created_at), datetime_complete=_time(end),
            params=params, distributions={k: dists[k] for k in params}, user_attrs=attrs, system_attrs={},
            intermediate_values={}, trial_id=number,
        ))
    return out


def to_optuna(storage: Storage | str, study: str = "default", optuna_storage: str = "sqlite:///optuna.db", *,
              optuna_study: str | None = None, replace: bool = False) -> optuna.Study:
    """Write ``study`` of ``storage`` (a Storage or URL) into the Optuna study ``optuna_study`` (default: the same
    name) of ``optuna_storage`` (an Optuna storage URL or a path, e.g. ``sqlite:///optuna.db``) and return it.

    An Optuna study of that name that exists already is an error (the trials would be added twice) unless
    ``replace=True``, which deletes it first.
    """
    from autorag_hp.deps import require
    from autorag_hp.errors import AutoRAGHPError
    from autorag_hp.storage.urls import database_url

    optuna = require("optuna", "exporting a study to Optuna")
    data = load_study(storage, study)
    name = optuna_study or study
    url = database_url(optuna_storage, paths=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    target = optuna.storages.RDBStorage(url)
    existing = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(target)}
    if name in existing:
        if not replace:
            raise AutoRAGHPError(
                f"Optuna study {name!r} exists already in {masked(url)} ({existing[name]} trials); pass "
                "--replace (replace=True) to overwrite it, or another --name (optuna_study=)")
        optuna.delete_study(study_name=name, storage=target)
    out = optuna.create_study(storage=target, study_name=name, direction="maximize")
    with warnings.catch_warnings():  # experimental since Optuna 3.2, still so marked in 5.x
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        out.set_metric_names(["reward"])
    best = [{"config": e.config.to_dict(), "mean": e.mean, "lower": e.lower, "upper": e.upper, "n": e.count}
            for e in data.best]  # Optuna's own "best trial" is the luckiest single reward, not a configuration's mean
    for key, value in {"source_storage": data.source, "source_study": data.name, "space": data.space.to_dict(),
                       "exported_by": "autorag-hp", "policy": data.policy, "best_configurations": best}.items():
        if value is not None:
            out.set_user_attr(key, value)
    out.add_trials(frozen_trials(data))
    return out
