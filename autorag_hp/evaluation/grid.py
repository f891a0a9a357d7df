"""The grid runner: every configuration × every question → one row (answer, every metric, tokens, latency).

Work is cut into *units*: one question × one *retrieval group* (the configurations equal on the pipeline's
``retrieval_keys``, e.g. ``chunk_size``, ``chunk_overlap``, ``embedding``, ``top_k``). A unit retrieves once and then,
per configuration, renders the prompt and generates; a temperature-0 prompt already answered (in this run, by
another worker, or before a restart: the table's answer cache) is reused instead of calling the LLM again.

Three ways to run, one worker code path:

- one process (``workers=1``);
- a local pool (``workers=N``): N spawned processes, each loading the pipeline once;
- distributed (``storage=URL``): units are trials of an Optuna study with a ``GridSampler`` over the unit
  indices in an RDB storage (PostgreSQL for several machines). Any number of processes on any machines run
  the same command; Optuna hands out units by trial number, a claim row per unit (compare-and-swap on the
  owning trial) stops the rare tail duplicate, and Optuna's heartbeat fails the trials of killed workers and
  re-enqueues them (``RetryHeartbeatStaleTrialCallback``) so a restart finishes their units.

Every mode resumes: cells already in the table are skipped; a killed run loses at most the cell in flight.
Every run that computes cells records this machine's CPU fingerprint in the table's meta (``cpus``): LLM
answers are bit-identical only on the same CPU kind (see :func:`autorag_hp.evaluation.cpu_kinds.made_on`).

The pipeline is duck-typed: ``.space``, ``.questions()``, and either the stages ``retrieve(question, config)``,
``render_prompt(question, contexts, config)``, ``generate(messages, config)`` (for work sharing) or just
``run(question, config) -> Answer``. ``retrieval_keys`` names the config keys that decide ``retrieve``; a
pipeline that does not say shares no retrieval between configurations. An optional ``uses_llm(config) -> bool`` tells whether ``generate`` calls
an LLM (an extractive generator does not), for counting LLM calls.

>>> summary = run_grid("python_docs_faq", "grid.sqlite", questions=100, workers=2)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autorag_hp.evaluation.cpu_kinds import this_cpu, unknown_cpu
from autorag_hp.evaluation.metrics import DEFAULT_METRICS, resolve_metrics
from autorag_hp.evaluation.table import GridTable, worker_name
from autorag_hp.rag.load import pipeline_from_spec
from autorag_hp.types import Answer, Context, QAItem

PROMPT_KEYS: tuple[str, ...] = ("prompt", "prompt_template")


def question_id(item: QAItem) -> str:
    return item.id or hashlib.sha1(item.question.encode("utf-8")).hexdigest()[:12]


def _canon(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False)


# ------------------------------------------------------------------------------------------------ plan
@dataclass(frozen=True)
class Unit:
    """One question × one retrieval group: retrieval runs once, generation once per configuration."""

    index: int
    item: QAItem
    configs: tuple[Any, ...]  # Config objects (Mapping with .id)

    @property
    def qid(self) -> str:
        return question_id(self.item)

    def keys(self) -> list[tuple[str, str]]:
        return [(c.id, self.qid) for c in self.configs]


def plan(configs: Sequence[Any], items: Sequence[QAItem], retrieval_keys: Iterable[str] | None) -> list[Unit]:
    """Units in a stable order (question, then first appearance of the retrieval settings). Configurations equal
    on ``retrieval_keys`` share a unit; with None (the pipeline does not say), each configuration is its own."""
    rk = None if retrieval_keys is None else tuple(retrieval_keys)
    groups: dict[str, list[Any]] = {}
    for c in configs:
        groups.setdefault(_canon(dict(c) if rk is None else {k: c[k] for k in rk if k in c}), []).append(c)
    units = []
    for item in items:
        for members in groups.values():
            units.append(Unit(len(units), item, tuple(members)))
    return units


# ------------------------------------------------------------------------------------------------ worker
class UnitRunner:
    """Computes units in one process: the pipeline, the metrics and the table connection live here."""

    def __init__(self, pipeline: Any, table: GridTable, metrics: Sequence[str] | None = None,
                 retrieval_keys: Iterable[str] | None = None):
        self.pipeline = pipeline
        self.table = table
        self.metrics = resolve_metrics(metrics if metrics is not None else DEFAULT_METRICS)
        self.retrieval_keys = tuple(retrieval_keys or ())
        self.staged = all(hasattr(pipeline, a) for a in ("retrieve", "render_prompt", "generate"))
        self.worker = worker_name()
        self._memo: dict[str, dict[str, Any]] = {}
        self.llm_calls = 0
        self.cells = 0

    def _uses_llm(self, config) -> int:
        f = getattr(self.pipeline, "uses_llm", None)
        if callable(f):
            return int(bool(f(config)))
        gen = getattr(self.pipeline, "generator", None)  # the RAG pipeline's generator says llm_calls = 0 / 1
        return int(getattr(gen, "llm_calls", 1)) if gen is not None else 1

    def _gen_key(self, messages: Any, config) -> str:
        gen = {k: config[k] for k in config if k not in self.retrieval_keys and k not in PROMPT_KEYS}
        return hashlib.sha1(_canon([messages, gen]).encode("utf-8")).hexdigest()

    def run_unit(self, unit: Unit, done: set[tuple[str, str]] | None = None,
                 still_mine: Callable[[], bool] | None = None) -> tuple[int, int]:
        """Compute the cells of ``unit`` not in ``done`` (default: not in the table). Returns (cells, llm_calls).

        ``still_mine`` is asked before each cell; when it says False (the unit was handed to someone else,
        e.g. this worker was presumed dead), the unit is abandoned.
        """
        if done is None:
            done = self.table.done_keys()
        pending = [c for c in unit.configs if (c.id, unit.qid) not in done]
        if not pending:
            return 0, 0
        cells = calls = 0
        item = unit.item
        contexts: list[Context] = []
        t_ret = 0.0
        if self.staged:
            t0 = time.perf_counter()
            contexts = list(self.pipeline.retrieve(item.question, pending[0]))
            t_ret = time.perf_counter() - t0
        for cfg in pending:
            if still_mine is not None and not still_mine():
                break
            reused = False
            n_llm = 0
            if self.staged:
                messages = self.pipeline.render_prompt(item.question, contexts, cfg)
                deterministic = float(cfg.get("temperature", 0.0) or 0.0) == 0.0
                key = self._gen_key(messages, cfg)
                hit = (self._memo.get(key) or self.table.cached_answer(key)) if deterministic else None
                if hit is not None:
                    text, pt, ct, gl = hit["text"], hit["prompt_tokens"], hit["completion_tokens"], hit["latency_s"]
                    reused = True
                else:
                    g = self.pipeline.generate(messages, cfg)
                    text, pt, ct, gl = g.text.strip(), g.prompt_tokens, g.completion_tokens, g.latency_s
                    n_llm = self._uses_llm(cfg)
                    if deterministic:
                        rec = {"text": text, "prompt_tokens": pt, "completion_tokens": ct, "latency_s": gl}
                        self._memo[key] = rec
                        self.table.cache_answer(key, **rec)
                answer = Answer(text, tuple(contexts), int(pt), int(ct), t_ret + float(gl), n_llm)
            else:
                answer = self.pipeline.run(item.question, cfg)
                n_llm = int(answer.llm_calls)
            row = {
                "config_id": cfg.id,
                "question_id": unit.qid,
                "config": dict(cfg),
                "question": item.question,
                "reference": item.answer,
                "answer": answer.text,
                "contexts": [[c.source, c.score] for c in answer.contexts],
                "metrics": {m.name: m(answer, item) for m in self.metrics},
                "prompt_tokens": answer.prompt_tokens,
                "completion_tokens": answer.completion_tokens,
                "latency_s": answer.latency_s,
                "llm_calls": n_llm,
                "answer_reused": reused,
                "worker": self.worker,
            }
            self.table.add_rows([row], log=True)  # one transaction per cell: a kill loses at most this cell
            cells += 1
            calls += n_llm
        self.cells += cells
        self.llm_calls += calls
        return cells, calls


# ------------------------------------------------------------------------------------------------ local pool
_W: dict[str, Any] = {}


def _set_threads(n: int | None) -> None:
    if not n:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def _init_worker(spec: str, overrides: dict | None, url: str, name: str, metrics: list[str],
                 rkeys: tuple[str, ...] | None,
                 threads: int | None) -> None:
    _set_threads(threads)
    _W["runner"] = UnitRunner(pipeline_from_spec(spec, overrides), GridTable(url, name), metrics, rkeys)


def _pool_unit(args: tuple[Unit, list[tuple[str, str]]]) -> tuple[int, int]:
    unit, done = args
    return _W["runner"].run_unit(unit, set(done))


# ------------------------------------------------------------------------------------------------ optuna
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
    study_id = study._study_id

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


# ------------------------------------------------------------------------------------------------ entry
def run_grid(
    pipeline: Any,
    out: str | os.PathLike,
    *,
    pipeline_kwargs: Mapping[str, Any] | None = None,
    space: Any = None,
    questions: int | None = None,
    table_name: str = "grid",
    workers: int = 1,
    metrics: Sequence[str] | None = None,
    storage: str | None = None,
    study: str | None = None,
    retrieval_keys: Iterable[str] | None = None,
    threads_per_worker: int | None = None,
    progress: bool = True,
    export: str | os.PathLike | None = None,
    heartbeat_s: int = 5,
    grace_s: int = 20,
    log: Callable[[str], None] | None = None,
    import_from: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Evaluate every configuration on every question into the table at ``out``; see the module docstring.

    ``pipeline``: a spec string (YAML path or ``module:factory``; needed when ``workers > 1`` or with
    ``storage``) or a pipeline object. ``space``: a SearchSpace or a path (default: ``pipeline.space``).
    ``questions``: the first N of ``pipeline.questions()``. Returns a summary dict (rows, cells computed now,
    LLM calls now and in total, wall time). ``import_from``: an export (``.jsonl.gz`` / ``.csv.gz``) of the
    same grid whose rows are loaded into the table first, so a committed partial grid resumes anywhere.
    """
    from autorag_hp.evaluation.table import to_url

    log = log or (lambda s: print(s, file=sys.stderr))
    t_start, wall0 = time.time(), time.perf_counter()
    overrides = dict(pipeline_kwargs or {})
    pipe = pipeline_from_spec(pipeline, overrides)
    if space is None:
        space = pipe.space
    elif isinstance(space, str | os.PathLike):
        from autorag_hp.space import SearchSpace

        space = SearchSpace.from_file(space)
    items = list(pipe.questions())
    if questions is not None:
        items = items[: int(questions)]
    rkeys = retrieval_keys or getattr(pipe, "retrieval_keys", None)
    rkeys = None if rkeys is None else tuple(rkeys)
    metric_names = list(metrics) if metrics is not None else list(DEFAULT_METRICS)
    resolve_metrics(metric_names)  # fail on an unknown name before any work
    configs = list(space.configs())
    units = plan(configs, items, rkeys)
    spec_name = str(pipeline) if isinstance(pipeline, str | os.PathLike) else type(pipe).__name__
    if overrides:
        spec_name += " " + _canon(overrides)
    table = GridTable.open(out, table_name, space=space, meta={"pipeline": spec_name})
    table.set_meta("n_configs", len(configs))
    table.set_meta("n_questions_requested", len(items))
    table.set_meta("metrics", metric_names)
    if import_from:
        from autorag_hp.evaluation.table_export import read_export

        old_rows, old_meta = read_export(import_from, space=space)
        n_new = table.add_rows(old_rows)
        if n_new:  # the imported rows were computed where the export says (or on an unknown CPU)
            for fp in old_meta.get("cpus") or [unknown_cpu(f"imported from {Path(import_from).name}")]:
                table.record_cpu(fp)
        if not table.get_meta("imported_runs"):
            table.set_meta("imported_runs", (old_meta.get("totals") or {}))
        log(f"grid: imported {n_new} rows from {import_from}")
    done = table.done_keys()
    total = len(configs) * len(items)
    pending = sum(1 for u in units for k in u.keys() if k not in done)
    log(f"grid: {len(configs)} configurations x {len(items)} questions = {total} cells in {len(units)} units; "
        f"{total - pending} already in the table, {pending} to compute")
    if pending:
        table.record_cpu(this_cpu())  # answers depend on the float kernels of the CPU that computes them
    if pending and (workers > 1 or storage) and hasattr(pipe, "build_indexes"):
        log("grid: building the retrieval indexes once before the workers start")
        pipe.build_indexes(space)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=total - pending, unit="cell", dynamic_ncols=True, smoothing=0.05)
    cells = calls = 0
    url = to_url(out)
    run_id = table.start_run(t_start, workers)  # updated as work completes: a killed run keeps its wall time
    last_tick = [0.0]

    def tick(force: bool = False) -> None:
        now = time.perf_counter()
        if force or now - last_tick[0] >= 5.0:
            last_tick[0] = now
            table.update_run(run_id, now - wall0, cells, calls)

    try:
        if storage:
            study = study or f"grid-{table_name}-{space.fingerprint}"
            kw = dict(spec=str(pipeline), table_url=url, table_name=table_name, storage_url=storage, study_name=study,
                      units=units, metrics=metric_names, rkeys=rkeys, threads=threads_per_worker,
                      heartbeat_s=heartbeat_s, grace_s=grace_s, overrides=overrides)
            _optuna_objects(storage, study, len(units), heartbeat_s, grace_s)  # create tables + study once
            if workers <= 1:
                if bar is not None:
                    bar.set_postfix_str("optuna worker (progress at the end)")
                kw["spec"] = pipe  # reuse the loaded pipeline in this process
                cells, calls = optuna_worker(**kw)
            else:
                import multiprocessing as mp

                ctx = mp.get_context("spawn")
                with ctx.Pool(workers) as pool:
                    res = pool.map_async(_optuna_proc, [kw] * workers)
                    seen = total - pending
                    while not res.ready():
                        res.wait(1.0)
                        now = table.count()
                        if now > seen:
                            if bar is not None:
                                bar.update(now - seen)
                            cells, seen = cells + now - seen, now  # provisional; exact counts at the end
                            tick()
                    cells = 0
                    for c, k in res.get():
                        cells += c
                        calls += k
        elif workers <= 1:
            runner = UnitRunner(pipe, table, metric_names, rkeys)
            for u in units:
                c, k = runner.run_unit(u, done)
                cells, calls = cells + c, calls + k
                tick()
                if bar is not None:
                    bar.set_postfix(llm_calls=calls, refresh=False)
                    bar.update(c)
        else:
            import multiprocessing as mp

            if not isinstance(pipeline, str | os.PathLike):
                raise ValueError("workers > 1 needs the pipeline as a spec string (YAML path or module:factory)")
            work = [(u, [k for k in u.keys() if k in done]) for u in units if any(k not in done for k in u.keys())]
            ctx = mp.get_context("spawn")
            with ctx.Pool(workers, initializer=_init_worker,
                          initargs=(str(pipeline), overrides, url, table_name, metric_names, rkeys,
                                    threads_per_worker)) as pool:
                for c, k in pool.imap_unordered(_pool_unit, work):
                    cells, calls = cells + c, calls + k
                    tick()
                    if bar is not None:
                        bar.set_postfix(llm_calls=calls, refresh=False)
                        bar.update(c)
    finally:
        if bar is not None:
            bar.close()
        wall = time.perf_counter() - wall0
        table.update_run(run_id, wall, cells, calls)
    totals = table.totals()
    summary = {"rows": totals["rows"], "cells_total": total, "computed_now": cells, "llm_calls_now": calls,
               "llm_calls_total": totals["llm_calls"], "answers_reused_total": totals["answers_reused"],
               "wall_s_now": round(wall, 2), "wall_s_total": round(totals["wall_s"], 2), "table": url,
               "table_name": table_name, "complete": totals["rows"] >= total}
    if export:
        table.export(export)
        summary["export"] = str(export)
    log("grid: " + json.dumps(summary))
    return summary

