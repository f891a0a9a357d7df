"""Optuna's TPESampler as a policy, through ask/tell, on the same budget as the bandits.

How it keeps the policy contract (:mod:`autorag_hp.policies.base`):

* **State is a fold.** Besides the base statistics, the state is the list of *Optuna trials*: one per
  decision (the tuner's ``Decision.number``; an update without one is a trial of its own),
  holding its configuration and the weighted sum of its rewards. A trial whose credited weight reaches 1
  (a fully reported batch) is COMPLETE with the batch's mean reward; earlier it is running and, as in Optuna
  without ``constant_liar``, ignored. The list serializes with :meth:`state_dict` like any other state.
* **select() is pure.** The in-memory Optuna study is a *cache* rebuilt from that list (extended in place
  when only new trials were completed). Each ``select`` builds a fresh ``TPESampler`` seeded from
  ``(seed, t)``, asks one trial and immediately tells it FAILED, which TPE ignores: the same state gives the
  same suggestion, in any process.

Deviation, stated plainly: TPE re-estimates its densities from all trials on every ask, so one decision
costs O(trials) — about 10–40 ms at 100–1,500 trials, versus microseconds for the bandits. The replay
benchmark therefore runs it on fewer seeds and a capped budget by default (see ``autorag-hp bench --help``).

>>> from autorag_hp.space import SearchSpace
>>> pol = OptunaTPEPolicy(SearchSpace({"top_k": [1, 3, 5], "prompt": ["a", "b"]}), seed=0)
>>> pol.select().config["top_k"] in (1, 3, 5)
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autorag_hp.decision import Decision
from autorag_hp.policies.base import Policy, Selection
from autorag_hp.space import Config


class OptunaTPEPolicy(Policy):
    """TPE (Optuna's ``TPESampler``, maximizing) over the space's categorical parameters."""

    name = "optuna_tpe"

    def __init__(self, space, seed: int = 0, n_startup_trials: int = 10, multivariate: bool = False):
        super().__init__(space, seed)
        if not (isinstance(n_startup_trials, int) and n_startup_trials >= 0):
            raise ValueError(f"n_startup_trials must be an int >= 0, got {n_startup_trials!r}")
        self.n_startup_trials = n_startup_trials
        self.multivariate = bool(multivariate)
        self._trials: dict[str, list[float]] = {}  # key -> [config index, weighted sum, weight], in first-credit order
        self._unkeyed = 0
        self._cache: tuple[Any, list[str]] | None = None  # (optuna study, keys of the trials it holds)

    def params(self) -> dict[str, Any]:
        return {"n_startup_trials": self.n_startup_trials, "multivariate": self.multivariate}

    # --- the fold ---------------------------------------------------------------------------------------
    def _on_update(self, idx: int, config: Config, reward: float, weight: float, decision: Decision) -> None:
        d = decision.number
        if d is None:
            key = f"u{self._unkeyed}"
            self._unkeyed += 1
            self._trials[key] = [float(idx), reward, 1.0]  # a report outside any decision: a complete trial
            return
        key = f"d{int(d)}"
        tr = self._trials.get(key)
        if tr is None:
            tr = self._trials[key] = [float(idx), 0.0, 0.0]
        tr[1] += weight * reward
        tr[2] += weight

    def _complete(self) -> list[tuple[str, int, float]]:
        return [(k, int(i), s / w) for k, (i, s, w) in self._trials.items() if w >= 1.0 - 1e-9]

    # --- selection --------------------------------------------------------------------------------------
    def _distributions(self) -> dict[str, Any]:
        from optuna.distributions import CategoricalDistribution

        return {p.name: CategoricalDistribution(list(p.values)) for p in self.space.params}

    def _study(self):
        import optuna
        from optuna.trial import create_trial

        done = self._complete()
        keys = [k for k, _, _ in done]
        cache = self._cache
        if cache is None or cache[1] != keys[: len(cache[1])]:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            cache = self._cache = (optuna.create_study(direction="maximize"), [])
        study, have = cache
        dists = self._distributions()
        for k, i, v in done[len(have):]:
            study.add_trial(create_trial(params=self.space.config_at(i).to_dict(), distributions=dists, value=v))
            have.append(k)
        return study, dists

    def _sampler(self, seed: int):
        """The sampler of one ask (a fresh one, seeded from the decision: select stays pure)."""
        import optuna

        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.n_startup_trials,
                                          multivariate=self.multivariate)

    def _select(self, rng: np.random.Generator) -> Selection:
        from optuna.trial import TrialState

        study, dists = self._study()
        sub_seed = int(np.random.default_rng([self.seed, self.t, 31]).integers(2**31 - 1))
        study.sampler = self._sampler(sub_seed)
        trial = study.ask(dists)
        params = dict(trial.params)
        study.tell(trial, state=TrialState.FAIL)  # TPE ignores failed trials: the study's content is unchanged
        return Selection(self.space.validate(Config(params)))

    # --- serialization ----------------------------------------------------------------------------------
    def _extra_state(self) -> dict[str, Any]:
        return {
            "trials": [[k, self.space.config_at(int(i)).id, s, w] for k, (i, s, w) in self._trials.items()],
            "unkeyed": self._unkeyed,
        }

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        ids = {self.space.config_at(i).id: i for i in range(self.space.size)}
        self._trials = {}
        for k, cid, s, w in extra.get("trials", []):
            if cid in ids:
                self._trials[k] = [float(ids[cid]), float(s), float(w)]
        self._unkeyed = int(extra.get("unkeyed", 0))
        self._cache = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = None  # the Optuna study is a cache: rebuilt from the trials on the next select
        return state
