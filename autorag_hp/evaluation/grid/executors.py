"""How the grid's units get computed: three executors behind one interface, one worker code path.

An executor gets a :class:`GridJob` (the units, the cells already done, the pipeline and how to rebuild it in
another process) and reports computed cells to a :class:`Progress` as they land:

- :class:`InlineExecutor`: this process (``workers=1``);
- :class:`PoolExecutor`: a local pool of N spawned processes, each loading the pipeline once;
- :class:`OptunaExecutor` (``storage=URL``): units are trials of an Optuna study with a ``GridSampler`` over
  the unit indices in an RDB storage (PostgreSQL for several machines). Any number of processes on any
  machines run the same command; Optuna hands out units by trial number, a claim row per unit
  (compare-and-swap on the owning trial) stops the rare tail duplicate, and Optuna's heartbeat fails the
  trials of killed workers and re-enqueues them (``RetryHeartbeatStaleTrialCallback``) so a restart
  finishes their units.

:func:`pick_executor` chooses one from ``workers`` and ``storage``. Every executor runs each unit through
:class:`~autorag_hp.evaluation.grid.runner.UnitRunner`.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from autorag_hp.evaluation.grid.plan import Unit
from autorag_hp.evaluation.grid.runner import UnitRunner
from autorag_hp.evaluation.table import GridTable
from autorag_hp.rag.load import pipeline_from_spec


class Progress(Protocol):
    """Where an executor reports work as it completes."""

    def add(self, cells: int, llm_calls: int) -> None:
        """``cells`` more cells computed, with ``llm_calls`` more LLM calls."""

    def note(self, text: str) -> None:
        """Say how progress will be reported (e.g. only at the end)."""


@dataclass
class GridJob:
    """What every executor needs: the units, the cells already in the table, and the pipeline, loaded here
    (``pipeline``) and rebuildable in another process (``pipeline_from_spec(spec, overrides)``)."""

    units: list[Unit]
    done: set[tuple[str, str]]
    pipeline: Any
    spec: Any
    table: GridTable
    table_url: str
    metrics: list[str]
    retrieval_keys: tuple[str, ...] | None
    overrides: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None
    batch: int = 1  # > 1: units computed `batch` at a time with batched generation (UnitRunner.run_units)

    def chunks(self) -> list[list[Unit]]:
        """The unfinished units, ``batch`` per chunk (one per chunk without batching)."""
        todo = [u for u in self.units if any(k not in self.done for k in u.keys())]
        n = max(1, self.batch)
        return [todo[i:i + n] for i in range(0, len(todo), n)]

    def spec_string(self) -> str:
        """The pipeline spec as other processes load it; an object cannot cross to them."""
        if not isinstance(self.spec, str | os.PathLike):
            raise ValueError("workers > 1 needs the pipeline as a spec string (YAML path or module:factory)")
        return str(self.spec)

    def n_done(self) -> int:
        """How many of the planned cells are already in the table."""
        return sum(1 for u in self.units for k in u.keys() if k in self.done)


class Executor(Protocol):
    def run(self, job: GridJob, progress: Progress) -> tuple[int, int]:
        """Compute every cell of ``job`` not yet done, reporting to ``progress``; returns (cells, llm_calls)."""


def pick_executor(workers: int = 1, storage: str | None = None, study: str = "grid",
                  heartbeat_s: int = 5, grace_s: int = 20) -> Executor:
    """Optuna-coordinated workers with ``storage`` (``study`` names the study), else a local pool for
    ``workers > 1``, else this process."""
    if storage:
        return OptunaExecutor(storage, study, workers, heartbeat_s, grace_s)
    return PoolExecutor(workers) if workers > 1 else InlineExecutor()


def _set_threads(n: int | None) -> None:
    if not n:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


# ------------------------------------------------------------------------------------------------ inline
class InlineExecutor:
    """Every unit in this process, with the pipeline already loaded."""

    def run(self, job: GridJob, progress: Progress) -> tuple[int, int]:
        runner = UnitRunner(job.pipeline, job.table, job.metrics, job.retrieval_keys)
        cells = calls = 0
        for chunk in job.chunks():
            c, k = runner.run_units(chunk, job.done, job.batch)
            cells, calls = cells + c, calls + k
            progress.add(c, k)
        return cells, calls


# ------------------------------------------------------------------------------------------------ local pool
_W: dict[str, Any] = {}  # the runner of this pool worker process


def _init_worker(spec: str, overrides: dict | None, url: str, name: str, metrics: list[str],
                 rkeys: tuple[str, ...] | None, threads: int | None, batch: int = 1) -> None:
    _set_threads(threads)
    _W["runner"] = UnitRunner(pipeline_from_spec(spec, overrides), GridTable(url, name), metrics, rkeys)
    _W["batch"] = batch


def _pool_units(args: tuple[list[Unit], list[tuple[str, str]]]) -> tuple[int, int]:
    units, done = args
    return _W["runner"].run_units(units, set(done), _W["batch"])


@dataclass
class PoolExecutor:
    """The unfinished units over ``workers`` spawned processes on this machine."""

    workers: int

    def run(self, job: GridJob, progress: Progress) -> tuple[int, int]:
        import multiprocessing as mp

        spec = job.spec_string()
        done = job.done
        work = [(chunk, [k for u in chunk for k in u.keys() if k in done]) for chunk in job.chunks()]
        cells = calls = 0
        ctx = mp.get_context("spawn")
        with ctx.Pool(self.workers, initializer=_init_worker,
                      initargs=(spec, job.overrides, job.table_url, job.table.name, job.metrics, job.retrieval_keys,
                                job.threads, job.batch)) as pool:
            for c, k in pool.imap_unordered(_pool_units, work):
                cells, calls = cells + c, calls + k
                progress.add(c, k)
        return cells, calls


# ------------------------------------------------------------------------------------------------ optuna
@dataclass
class OptunaExecutor:
    """Units handed out by the Optuna study ``study`` in the RDB ``storage`` to ``workers`` processes here (and
    to whoever else runs the same command against the same storage)."""

    storage: str
    study: str
    workers: int = 1
    heartbeat_s: int = 5
    grace_s: int = 20

    def run(self, job: GridJob, progress: Progress) -> tuple[int, int]:
        kw = dict(table_url=job.table_url, table_name=job.table.name, storage_url=self.storage,
                  study_name=self.study, units=job.units, metrics=job.metrics, rkeys=job.retrieval_keys,
                  threads=job.threads, heartbeat_s=self.heartbeat_s, grace_s=self.grace_s, overrides=job.overrides)
        # create Optuna's tables and the study once, before any worker races to
        _optuna_objects(self.storage, self.study, len(job.units), self.heartbeat_s, self.grace_s)
        if self.workers <= 1:
            progress.note("optuna worker (progress at the end)")
            return optuna_worker(spec=job.pipeline, **kw)  # reuse the loaded pipeline in this process
        import multiprocessing as mp

        kw["spec"] = job.spec_string()
        ctx = mp.get_context("spawn")
        with ctx.Pool(self.workers) as pool:
            res = pool.map_async(_optuna_proc, [kw] * self.workers)
            seen = job.n_done()
            while not res.ready():
                res.wait(1.0)
                now = job.table.count()
                if now > seen:
                    progress.add(now - seen, 0)  # provisional; exact counts at the end
                    seen = now
            cells = calls = 0
            for c, k in res.get():
                cells += c
                calls += k
        return cells, calls


def _optuna_objects(storage_url: str, study_name: str, n_units: int, heartbeat_s: int, grace_s: int):
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    from autorag_hp.evaluation.table import to_url

    storage = None
    for attempt in range(20):  # several workers may create Optuna's tables at once
        try:
            storage = RDBStorage(
                to_url(storage_url),
                engine_kwargs={"pool_pre_ping": True} if "postgresql" in storage_url
                else {"connect_args": {"timeout": 60}},
                heartbeat_interval=heartbeat_s,
                grace_period=grace_s,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=None),
            )
            break
        except Exception:  # noqa: BLE001 - "table already exists" from a concurrent creator
            if attempt == 19:
                raise
            time.sleep(0.25)
    sampler = optuna.samplers.GridSampler({"unit": list(range(n_units))}, seed=0)
    study = None
    for _ in range(20):  # several workers may create the study at once
        try:
            study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler, load_if_exists=True)
            break
        except Exception:  # noqa: BLE001 - a concurrent creation race; retry loading it
            time.sleep(0.25)
    if study is None:
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
    fp_units = study.user_attrs.get("n_units")
    if fp_units is None:
        study.set_user_attr("n_units", n_units)
    elif fp_units != n_units:
        from autorag_hp.evaluation.table import TableMismatchError

        raise TableMismatchError(
            f"Optuna study {study_name!r} was planned with {fp_units} units of work, this run has {n_units} "
            "(different space, questions or retrieval keys); use another --study name"
        )
    return optuna, storage, sampler, study


def optuna_worker(spec: Any, table_url: str, table_name: str, storage_url: str, study_name: str,
                  units: Sequence[Unit], metrics: Sequence[str] | None, rkeys: tuple[str, ...] | None = None,
                  threads: int | None = None, heartbeat_s: int = 5, grace_s: int = 20, poll_s: float = 1.0,
                  overrides: Mapping[str, Any] | None = None) -> tuple[int, int]:
    """Run units handed out by an Optuna study until the table is complete. Returns (cells, llm_calls)."""
    _set_threads(threads)
    optuna, storage, sampler, study = _optuna_objects(storage_url, study_name, len(units), heartbeat_s, grace_s)
    from optuna.trial import TrialState

    table = GridTable(table_url, table_name)
    runner = UnitRunner(pipeline_from_spec(spec, overrides), table, metrics, rkeys)
    study_id = storage.get_study_id_from_name(study_name)

    def owner_alive(number: int) -> bool:
        try:
            tid = storage.get_trial_id_from_study_id_trial_number(study_id, number)
            return storage.get_trial(tid).state == TrialState.RUNNING
        except KeyError:
            return False

    def objective(trial) -> float:
        u = int(trial.suggest_categorical("unit", list(range(len(units)))))
        trial.set_user_attr("worker", runner.worker)
        if not table.claim(u, trial.number, owner_alive):
            return 0.0  # another live trial owns this unit
        cells, _ = runner.run_unit(units[u], still_mine=lambda: table.claim_owner(u) == trial.number)
        return float(cells)

    def missing_units() -> list[int]:
        done = table.done_keys()
        return [u.index for u in units if any(k not in done for k in u.keys())]

    first = True
    while True:
        missing = missing_units()
        if not missing:
            break
        optuna.storages.fail_stale_trials(study)
        trials = storage.get_all_trials(study_id, deepcopy=False)
        waiting = any(t.state == TrialState.WAITING for t in trials)
        if first or waiting or not sampler.is_exhausted(study):
            first = False
            study.optimize(objective, gc_after_trial=False)
            continue
        if any(t.state == TrialState.RUNNING for t in trials):
            time.sleep(poll_s)  # someone is on it; if they die, the heartbeat re-enqueues their unit
            continue
        for u in missing:  # nobody holds these (e.g. a trial that raised): hand them out again
            study.enqueue_trial({"unit": u})
    return runner.cells, runner.llm_calls


def _optuna_proc(kwargs: dict) -> tuple[int, int]:
    return optuna_worker(**kwargs)
