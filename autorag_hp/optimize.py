"""``Tuner.optimize(objective, n_trials=...)``: Optuna's ``study.optimize`` convention over the ask/tell tuner.

>>> from autorag_hp import SearchSpace, Tuner
>>> tuner = Tuner(SearchSpace({"top_k": [1, 3, 5]}), policy="ucb", seed=0)
>>> tuner.optimize(lambda trial: -abs(trial.config["top_k"] - 3), n_trials=9)
>>> tuner.best(1)[0].config["top_k"]
3

For users with an objective function rather than a live stream of questions. Each call of ``objective(trial)``
gets a :class:`~autorag_hp.trial.Trial` (its ``config`` maps parameter names to values) and returns the
reward. As in Optuna: ``n_jobs`` threads evaluate at once (the tuner is thread-safe); an exception the
objective raises fails the trial (it expires, so its configuration is released and nothing is credited) and is
raised again unless its type is in ``catch``; ``callbacks`` run after each finished trial, as
``callback(tuner, trial, reward)`` (``reward`` is None for a failed one); the loop ends after ``n_trials``, after
``timeout`` seconds, or when the policy has nothing left to try (a grid that is done); with neither, as in Optuna,
it runs until then.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from autorag_hp.errors import SpaceExhaustedError


def optimize(tuner: Any, objective: Callable[[Any], float], n_trials: int | None = None, *,
             timeout: float | None = None, n_jobs: int = 1, catch: Iterable[type[BaseException]] = (),
             callbacks: Iterable[Callable[[Any, Any, float | None], None]] = (), show_progress_bar: bool = False) -> None:
    """Run ``objective`` on suggested trials and report what it returns (see the module docstring)."""
    for name, value in (("n_trials", n_trials), ("n_jobs", n_jobs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    catch, callbacks = tuple(catch), list(callbacks)
    deadline = math.inf if timeout is None else time.monotonic() + timeout
    lock = threading.Lock()
    state = {"started": 0, "error": None}
    bar = None
    if show_progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_trials, desc="optimize", unit="trial")

    def claim() -> bool:
        with lock:
            if state["error"] is not None or time.monotonic() >= deadline:
                return False
            if n_trials is not None and state["started"] >= n_trials:
                return False
            state["started"] += 1
            return True

    def worker() -> None:
        while claim():
            try:
                trial = tuner.suggest()
            except SpaceExhaustedError:
                return
            try:
                reward = objective(trial)
            except Exception as exc:
                tuner.storage.expire_trial(tuner.study, trial.id, tuner.clock())
                tuner.sync()
                for cb in callbacks:
                    cb(tuner, trial, None)
                if not isinstance(exc, catch):
                    with lock:
                        state["error"] = state["error"] or exc
                    return
                continue
            tuner.report(trial.id, reward)
            for cb in callbacks:
                cb(tuner, trial, reward)
            if bar is not None:
                bar.update(1)

    try:
        if n_jobs == 1:
            worker()
        else:
            threads = [threading.Thread(target=worker, name=f"optimize-{i}", daemon=True) for i in range(n_jobs)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
    finally:
        if bar is not None:
            bar.close()
    if state["error"] is not None:
        raise state["error"]
