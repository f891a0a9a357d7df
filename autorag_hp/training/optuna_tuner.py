"""Optuna for model training: TPE by default, samplers and pruners by name, a shared study by storage URL.

Several worker processes (or machines) that open the same ``storage`` URL and ``study_name`` share one study:
each asks Optuna for the next trial and writes its result to the database, and the sampler sees every
worker's trials. SQLite works for processes on one machine; use PostgreSQL (``postgresql://...``, needs the
``postgres`` extra) across machines.

Example:
    >>> from autorag_hp.training import OptunaTuner
    >>> from autorag_hp.training.objectives import quadratic, QUADRATIC_SPACE
    >>> tuner = OptunaTuner(quadratic, QUADRATIC_SPACE, seed=0)
    >>> study = tuner.optimize(60, show_progress=False)
    >>> round(tuner.best_value, 1) < 0.5
    True

The objective takes the sampled ``params`` dict and returns a float. An objective with a second parameter
also receives ``report(step, value)``; calling it records an intermediate value and raises
``optuna.TrialPruned`` when the pruner says stop. With ``space=None`` the objective gets the raw
``optuna.Trial`` instead (define-by-run).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any

from autorag_hp.deps import require

from .dimensions import Dimension, validate_space


def _optuna():
    return require("optuna", "OptunaTuner")


def _sampler(name: str, seed: int | None, space: Mapping[str, Dimension] | None):
    s = _optuna().samplers
    table: dict[str, Callable[[], Any]] = {
        "tpe": lambda: s.TPESampler(seed=seed),
        "tpe-multivariate": lambda: s.TPESampler(seed=seed, multivariate=True),
        "random": lambda: s.RandomSampler(seed=seed),
        "cmaes": lambda: s.CmaEsSampler(seed=seed),
        "qmc": lambda: s.QMCSampler(seed=seed),
        "gp": lambda: s.GPSampler(seed=seed),
        "nsga2": lambda: s.NSGAIISampler(seed=seed),
        "bruteforce": lambda: s.BruteForceSampler(seed=seed),
        "grid": lambda: s.GridSampler(_grid_for(space), seed=seed),
    }
    if name not in table:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(table)}")
    import warnings

    with warnings.catch_warnings():  # QMC, brute force: "experimental" since Optuna 3, stable enough here
        warnings.simplefilter("ignore", _optuna().exceptions.ExperimentalWarning)
        return table[name]()


def _grid_for(space):
    from .dimensions import to_grid

    if space is None:
        raise ValueError("the 'grid' sampler needs a declared search space (space=None is define-by-run)")
    return to_grid(space)


def _pruner(name: str | None):
    p = _optuna().pruners
    table: dict[str, Callable[[], Any]] = {
        "none": p.NopPruner,
        "median": lambda: p.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
        "percentile": lambda: p.PercentilePruner(25.0, n_startup_trials=5, n_warmup_steps=1),
        "hyperband": p.HyperbandPruner,
        "successive_halving": p.SuccessiveHalvingPruner,
        "threshold": lambda: p.ThresholdPruner(upper=1e9),
        "wilcoxon": p.WilcoxonPruner,
    }
    key = "none" if name is None else name
    if key not in table:
        raise ValueError(f"unknown pruner {name!r}; choose one of {sorted(table)}")
    return table[key]()


SAMPLERS = ("tpe", "tpe-multivariate", "random", "cmaes", "qmc", "gp", "nsga2", "bruteforce", "grid")
PRUNERS = ("none", "median", "percentile", "hyperband", "successive_halving", "threshold", "wilcoxon")


class OptunaTuner:
    """Tune ``objective(params) -> float`` over ``space`` with an Optuna study.

    Args:
        objective: ``f(params)`` or ``f(params, report)``; with ``space=None``, ``f(trial)``.
        space: dict of name -> :class:`~autorag_hp.training.dimensions.Float` / ``Int`` / ``Categorical``.
        direction: ``"minimize"`` (default) or ``"maximize"``.
        sampler: a name from :data:`SAMPLERS` (default ``"tpe"``) or an ``optuna.samplers.BaseSampler``.
        pruner: a name from :data:`PRUNERS`, an ``optuna.pruners.BasePruner``, or None (no pruning).
        storage: None (in memory), or a URL (``sqlite:///study.db``, ``postgresql://user@host/db``) that
            several processes share.
        study_name: required with a storage URL so that workers find the same study.
        seed: the sampler's seed. Parallel workers must use different seeds, or they propose the same
            points; :meth:`run_workers` gives worker ``i`` the seed ``seed + i``.
    """

    def __init__(
        self,
        objective: Callable[..., float],
        space: Mapping[str, Dimension] | None = None,
        *,
        direction: str = "minimize",
        sampler: str | Any = "tpe",
        pruner: str | Any | None = None,
        storage: str | None = None,
        study_name: str | None = None,
        seed: int | None = 0,
        load_if_exists: bool = True,
    ) -> None:
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
        if storage is not None and not study_name:
            raise ValueError("a storage URL needs a study_name, so that every worker opens the same study")
        self.objective = objective
        self.space = None if space is None else validate_space(space)
        self.direction = direction
        self.sampler_spec, self.pruner_spec = sampler, pruner
        self.storage, self.study_name, self.seed = normalize_storage_url(storage), study_name, seed
        self.load_if_exists = load_if_exists
        self._takes_report = self.space is not None and _n_positional(objective) >= 2
        self._study = None

    # -------------------------------------------------------------------------------- the study
    @property
    def study(self):
        """The ``optuna.Study`` (created, or loaded from ``storage``, on first use)."""
        if self._study is None:
            optuna = _optuna()
            sampler = self.sampler_spec
            if isinstance(sampler, str):
                sampler = _sampler(sampler, self.seed, self.space)
            pruner = self.pruner_spec
            if pruner is None or isinstance(pruner, str):
                pruner = _pruner(pruner)
            self._study = optuna.create_study(
                storage=self.storage,
                sampler=sampler,
                pruner=pruner,
                study_name=self.study_name,
                direction=self.direction,
                load_if_exists=self.load_if_exists,
            )
        return self._study

    def _wrapped(self, trial) -> float:
        if self.space is None:
            return float(self.objective(trial))
        params = {name: dim.suggest(trial, name) for name, dim in self.space.items()}
        trial.set_user_attr("worker_pid", os.getpid())
        if not self._takes_report:
            return float(self.objective(params))
        optuna = _optuna()

        def report(step: int, value: float) -> None:
            trial.report(float(value), int(step))
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step} with value {value:.4g}")

        return float(self.objective(params, report))

    def optimize(
        self,
        n_trials: int,
        *,
        timeout: float | None = None,
        n_jobs: int = 1,
        show_progress: bool = True,
        catch: tuple[type[Exception], ...] = (),
    ):
        """Run ``n_trials`` trials (in this process; ``n_jobs`` threads) and return the study.

        ``show_progress`` draws a tqdm bar with the best value and an ETA.
        """
        if n_trials is not None and n_trials <= 0:
            raise ValueError(f"n_trials must be positive, got {n_trials}")
        optuna = _optuna()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        callbacks = []
        bar = None
        if show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_trials, desc=f"optuna {self.study_name or ''}".strip(), unit="trial")

            def _tick(study, trial) -> None:
                bar.update(1)
                try:
                    bar.set_postfix(best=f"{study.best_value:.4g}")
                except ValueError:  # no completed trial yet
                    pass

            callbacks.append(_tick)
        try:
            self.study.optimize(
                self._wrapped, n_trials=n_trials, timeout=timeout, n_jobs=n_jobs, catch=catch, callbacks=callbacks
            )
        finally:
            if bar is not None:
                bar.close()
        return self.study

    # ------------------------------------------------------------------------------- results
    @property
    def best_params(self) -> dict:
        return dict(self.study.best_params)

    @property
    def best_value(self) -> float:
        return float(self.study.best_value)

    def trials_table(self) -> list[dict]:
        """One dict per finished trial: number, state, value, params, worker pid."""
        return [
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                **{f"param_{k}": v for k, v in t.params.items()},
                "worker_pid": t.user_attrs.get("worker_pid"),
            }
            for t in self.study.trials
        ]

    def export_plots(self, out_dir: str, prefix: str = "optuna", plotlyjs: str = "inline") -> dict[str, str]:
        """Write the optimization history and the parameter importances as PNG (matplotlib) and HTML (plotly).

        ``plotlyjs="inline"`` makes self-contained HTML files that open offline (~4 MB each); ``"cdn"`` makes
        small files that load plotly.js from the internet.

        Returns ``{"history_png": path, "history_html": ..., "importances_png": ..., "importances_html": ...}``.
        Importances need at least two completed trials and more than one parameter value.
        """
        import warnings

        optuna = _optuna()
        import matplotlib

        matplotlib.use("Agg")
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        import matplotlib.pyplot as plt

        os.makedirs(out_dir, exist_ok=True)
        study = self.study
        done = [t for t in study.trials if t.state.name == "COMPLETE"]
        if len(done) < 2:
            raise ValueError(f"need at least 2 completed trials to plot, have {len(done)}")
        out: dict[str, str] = {}
        importance_eval = optuna.importance.FanovaImportanceEvaluator(seed=0)
        for kind, mpl_fn, plotly_fn, kwargs in (
            (
                "history",
                optuna.visualization.matplotlib.plot_optimization_history,
                optuna.visualization.plot_optimization_history,
                {},
            ),
            (
                "importances",
                optuna.visualization.matplotlib.plot_param_importances,
                optuna.visualization.plot_param_importances,
                {"evaluator": importance_eval},
            ),
        ):
            ax = mpl_fn(study, **kwargs)
            fig = ax.figure if hasattr(ax, "figure") else ax
            fig.tight_layout()
            png = os.path.join(out_dir, f"{prefix}_{kind}.png")
            fig.savefig(png, dpi=110)
            plt.close(fig)
            html = os.path.join(out_dir, f"{prefix}_{kind}.html")
            plotly_fn(study, **kwargs).write_html(html, include_plotlyjs=plotlyjs if plotlyjs == "cdn" else True)
            out[f"{kind}_png"], out[f"{kind}_html"] = png, html
        return out

    # ------------------------------------------------------------------------------- workers
    def run_workers(self, n_workers: int, n_trials_per_worker: int) -> list[int]:
        """Start ``n_workers`` processes that share this tuner's storage; wait; return their exit codes.

        The objective must be importable by a fresh process (a module-level function) and ``storage``
        must be a URL that every process can open. Worker ``i`` seeds its sampler with ``seed + i``.
        """
        import multiprocessing as mp

        if self.storage is None:
            raise ValueError("run_workers needs a storage URL (sqlite:///... or postgresql://...)")
        if not isinstance(self.sampler_spec, str) or not (self.pruner_spec is None or isinstance(self.pruner_spec, str)):
            raise ValueError("run_workers needs the sampler and pruner given by name, so each worker can build its own")
        _ = self.study  # create the study once, here, before the workers race to create it
        ctx = mp.get_context("spawn")
        procs = []
        for i in range(n_workers):
            spec = dict(
                objective=self.objective,
                space=self.space,
                direction=self.direction,
                sampler=self.sampler_spec,
                pruner=self.pruner_spec,
                storage=self.storage,
                study_name=self.study_name,
                seed=None if self.seed is None else self.seed + i,
            )
            p = ctx.Process(target=_worker_main, args=(spec, n_trials_per_worker), name=f"optuna-worker-{i}")
            p.start()
            procs.append(p)
        for p in procs:
            p.join()
        self._study = None  # reload: the workers' trials are in the storage
        return [p.exitcode for p in procs]


def _worker_main(spec: dict, n_trials: int) -> None:
    # Workers share the machine: one BLAS/OpenMP thread each unless the user asked otherwise.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    OptunaTuner(**spec).optimize(n_trials, show_progress=False)


def normalize_storage_url(url: str | None) -> str | None:
    """An Optuna storage URL with the project's one driver rule (:func:`autorag_hp.storage.urls.database_url`)."""
    from autorag_hp.storage.urls import database_url

    return None if url is None else database_url(url)


def _n_positional(fn: Callable) -> int:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 1
    return sum(
        1
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    )


def delete_study(storage: str, study_name: str) -> None:
    """Remove a study (and its trials) from a storage; a no-op when it does not exist."""
    optuna = _optuna()
    try:
        optuna.delete_study(study_name=study_name, storage=normalize_storage_url(storage))
    except KeyError:
        pass
