"""Exhaustive grid search of a training objective with scikit-learn ``ParameterGrid`` semantics, parallel over
processes: it finds the best point. (:mod:`autorag_hp.evaluation.grid` is another thing: it computes every
RAG configuration on every question into a table, the ground truth the tuners are judged by.)

A grid is a dict of name -> list of values (every combination is tried) or a list of such dicts (their
union, in order). Results come back in grid order whatever the parallelism, and the best result is the
first one in grid order among the ties, so a run is reproducible.

Example:
    >>> from autorag_hp.training import GridTuner
    >>> from autorag_hp.training.objectives import quadratic
    >>> g = GridTuner(quadratic, {"x": [0.0, 1.0, 2.0, 3.0], "y": [-2.0, -1.0, 0.0]})
    >>> g.run(show_progress=False).best_params
    {'x': 2.0, 'y': -1.0}

With ``log_path`` every result is appended to a JSON-lines file as it arrives, and a second run skips the
points already there (resume after an interruption).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def _param_grid(grid):
    try:
        from sklearn.model_selection import ParameterGrid
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("GridTuner needs scikit-learn: `pip install -e '.[training]'`") from exc
    grids = [grid] if isinstance(grid, Mapping) else list(grid)
    if not grids:
        raise ValueError("the parameter grid is empty: give a dict of name -> non-empty list of values")
    for g in grids:
        if not isinstance(g, Mapping) or not g:
            raise ValueError(f"each grid must be a non-empty dict of name -> list of values, got {g!r}")
        for name, values in g.items():
            if isinstance(values, str | bytes | Mapping) or not hasattr(values, "__len__") or len(values) == 0:
                raise ValueError(
                    f"grid parameter {name!r} needs a non-empty list of values, got {values!r}"
                )
    return ParameterGrid(grids)


@dataclass
class GridResult:
    direction: str
    results: list[dict] = field(default_factory=list)  # {"params", "value", "seconds", "error"} in grid order

    def _ok(self) -> list[dict]:
        return [r for r in self.results if r["error"] is None and math.isfinite(r["value"])]

    @property
    def best(self) -> dict:
        ok = self._ok()
        if not ok:
            raise ValueError("no grid point finished with a finite value")
        sign = 1.0 if self.direction == "minimize" else -1.0
        # min() keeps the first of equal keys: ties go to the earliest point in grid order
        return min(ok, key=lambda r: sign * r["value"])

    @property
    def best_params(self) -> dict:
        return dict(self.best["params"])

    @property
    def best_value(self) -> float:
        return float(self.best["value"])


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars, so a point's JSON key is the same before and after a log round trip."""
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", None) == 0 else value


def _key(params: Mapping) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def _evaluate(objective: Callable[[dict], Any], params: dict, threads: int | None) -> dict:
    if threads:
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:  # pragma: no cover
            pass
    t0 = time.perf_counter()
    try:
        out = objective(dict(params))
        value, extra = (float(out["value"]), {k: v for k, v in out.items() if k != "value"}) if isinstance(
            out, Mapping
        ) else (float(out), {})
        error = None
    except Exception as exc:  # noqa: BLE001 - a failed point is recorded, the search goes on
        value, extra, error = math.nan, {}, f"{type(exc).__name__}: {exc}"
    return {"params": params, "value": value, "extra": extra, "seconds": time.perf_counter() - t0, "error": error}


class GridTuner:
    """Evaluate ``objective(params)`` at every point of ``param_grid``.

    Args:
        objective: ``f(params) -> float`` or ``-> {"value": float, ...}`` (extra keys are kept in the result).
            With ``n_jobs > 1`` it must be picklable (a module-level function or a ``functools.partial`` of one).
        param_grid: dict of name -> list, or a list of such dicts (``sklearn.model_selection.ParameterGrid``).
        direction: ``"minimize"`` or ``"maximize"``.
        n_jobs: worker processes (spawned, so torch and BLAS thread pools start clean); 1 runs inline.
        threads_per_job: torch threads per worker (None leaves it alone).
        log_path: JSON-lines file to append each result to, and to resume from.
    """

    def __init__(
        self,
        objective: Callable[[dict], Any],
        param_grid: Mapping[str, Sequence] | Sequence[Mapping[str, Sequence]],
        *,
        direction: str = "minimize",
        n_jobs: int = 1,
        threads_per_job: int | None = 1,
        log_path: str | None = None,
    ) -> None:
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
        if n_jobs < 1:
            raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
        self.objective = objective
        self.grid = _param_grid(param_grid)
        self.direction, self.n_jobs, self.threads = direction, n_jobs, threads_per_job
        self.log_path = log_path

    def __len__(self) -> int:
        return len(self.grid)

    def _load_log(self) -> dict[str, dict]:
        done: dict[str, dict] = {}
        if self.log_path and os.path.exists(self.log_path):
            with open(self.log_path) as fh:
                for line in fh:
                    if line.strip():
                        rec = json.loads(line)
                        done[_key(rec["params"])] = rec
        return done

    def run(self, show_progress: bool = True, desc: str = "grid") -> GridResult:
        """Evaluate every point not already in ``log_path``; return all results in grid order."""
        points = [{k: _plain(v) for k, v in p.items()} for p in self.grid]
        done = self._load_log()
        todo = [p for p in points if _key(p) not in done]
        log = open(self.log_path, "a") if self.log_path else None  # noqa: SIM115 - closed in finally
        bar = None
        if show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(points), initial=len(points) - len(todo), desc=desc, unit="point")

        def _record(rec: dict) -> None:
            done[_key(rec["params"])] = rec
            if log is not None:
                log.write(json.dumps(rec, default=str) + "\n")
                log.flush()
            if bar is not None:
                bar.update(1)

        try:
            if self.n_jobs == 1:
                for p in todo:
                    _record(_evaluate(self.objective, p, self.threads))
            else:
                import multiprocessing as mp
                from concurrent.futures import ProcessPoolExecutor, as_completed

                with ProcessPoolExecutor(self.n_jobs, mp_context=mp.get_context("spawn")) as pool:
                    futs = [pool.submit(_evaluate, self.objective, p, self.threads) for p in todo]
                    for f in as_completed(futs):
                        _record(f.result())
        finally:
            if bar is not None:
                bar.close()
            if log is not None:
                log.close()
        return GridResult(self.direction, [done[_key(p)] for p in points])
