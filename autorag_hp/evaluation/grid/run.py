"""``run_grid``: evaluate every configuration on every question into a resumable grid table.

It loads the pipeline, plans the units (:mod:`.plan`), opens the table (checking it holds the same grid),
imports a committed export if asked, records this machine's CPU kind, and hands the units to the executor
that ``workers`` / ``storage`` pick (:mod:`.executors`); see the package docstring.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from autorag_hp.evaluation.cpu_kinds import this_cpu, unknown_cpu
from autorag_hp.evaluation.grid.executors import GridJob, pick_executor
from autorag_hp.evaluation.grid.plan import canonical_json, plan
from autorag_hp.evaluation.metrics import DEFAULT_METRICS, resolve_metrics
from autorag_hp.evaluation.table import GridTable, to_url, with_imported_runs
from autorag_hp.rag.load import pipeline_from_spec


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
    batch: int = 1,
) -> dict[str, Any]:
    """Evaluate every configuration on every question into the table at ``out``; see the module docstring.

    ``pipeline``: a spec string (YAML path or ``module:factory``; needed when ``workers > 1`` or with
    ``storage``) or a pipeline object. ``space``: a SearchSpace or a path (default: ``pipeline.space`` as
    :func:`autorag_hp.overrides.tuned_space` fits it to the corpus language and the generator).
    ``questions``: the first N of ``pipeline.questions()``. Returns a summary dict (rows, cells computed now,
    LLM calls now and in total, wall time). ``import_from``: an export (``.jsonl.gz`` / ``.csv.gz``) of the
    same grid whose rows are loaded into the table first, so a committed partial grid resumes anywhere.
    ``batch``: answer the LLM prompts this many at a time (``UnitRunner.run_units``; not with ``storage``).
    """
    log = log or (lambda s: print(s, file=sys.stderr))
    t_start, wall0 = time.time(), time.perf_counter()
    overrides = dict(pipeline_kwargs or {})
    pipe = pipeline_from_spec(pipeline, overrides)
    if space is None:  # the pipeline's default space, fitted to it as tune and serve fit it (language, generator)
        from autorag_hp.overrides import tuned_space

        space, _ = tuned_space(None, None, pipe, notify=log)
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
        spec_name += " " + canonical_json(overrides)
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
    executor = pick_executor(workers, storage, study or f"grid-{table_name}-{space.fingerprint}", heartbeat_s, grace_s)
    url = to_url(out)
    job = GridJob(units, done, pipe, pipeline, table, url, metric_names, rkeys, overrides, threads_per_worker, batch)
    run_id = table.start_run(t_start, workers)  # updated as work completes: a killed run keeps its wall time
    tally = _Tally(table, run_id, wall0, bar)
    try:
        tally.cells, tally.calls = executor.run(job, tally)
    finally:
        if bar is not None:
            bar.close()
        wall = time.perf_counter() - wall0
        table.update_run(run_id, wall, tally.cells, tally.calls)
    totals = with_imported_runs(table.totals(), table.get_meta("imported_runs"))
    summary = {"rows": totals["rows"], "cells_total": total, "computed_now": tally.cells,
               "llm_calls_now": tally.calls, "llm_calls_total": totals["llm_calls"],
               "answers_reused_total": totals["answers_reused"], "wall_s_now": round(wall, 2),
               "wall_s_total": round(totals["wall_s"], 2), "table": url, "table_name": table_name,
               "complete": totals["rows"] >= total}
    if export:
        table.export(export)
        summary["export"] = str(export)
    log("grid: " + json.dumps(summary))
    return summary


class _Tally:
    """The :class:`~autorag_hp.evaluation.grid.executors.Progress` of a run: counts, the progress bar, and the
    run's row in the table (updated at most every 5 s, so a killed run keeps its wall time)."""

    def __init__(self, table: GridTable, run_id: int, wall0: float, bar: Any = None):
        self.table, self.run_id, self.wall0, self.bar = table, run_id, wall0, bar
        self.cells = self.calls = 0
        self.last_tick = 0.0

    def add(self, cells: int, llm_calls: int) -> None:
        self.cells += cells
        self.calls += llm_calls
        now = time.perf_counter()
        if now - self.last_tick >= 5.0:
            self.last_tick = now
            self.table.update_run(self.run_id, now - self.wall0, self.cells, self.calls)
        if self.bar is not None:
            self.bar.set_postfix(llm_calls=self.calls, refresh=False)
            self.bar.update(cells)

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text)
