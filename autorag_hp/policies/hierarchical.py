"""What Hier-UCB and Hier-TS share: a two-level bandit over (hyper-parameter, value).

Each decision the high-level bandit chooses WHICH hyper-parameter to change, the low-level bandit of that
hyper-parameter chooses its VALUE, and every other hyper-parameter stays at the incumbent. The paper
(Fu et al., 2024) leaves three things open; this is what we chose:

* **How the incumbent moves.** The incumbent value of a hyper-parameter is the value with the best mean in
  that hyper-parameter's low-level bandit (values never tried don't count; ties keep the earlier incumbent,
  then the first value in the space's order). Before a hyper-parameter has any credited reward its incumbent
  is its initial value: ``initial=`` if given, otherwise a configuration drawn from the seed. The incumbent is
  therefore a function of the statistics alone, so it moves as soon as evidence says so and is reproduced
  exactly when the log is replayed.
* **What t is at each level.** High level: ``t`` = decisions so far including this one. Low level of
  hyper-parameter ``p``: ``t_p`` = pulls of ``p`` at the high level (credited + pending) + 1, i.e. the number
  of times this low-level bandit has been consulted including now, as in nested UCB.
* **How a batch is credited.** A batch of B questions is one decision; every reward in it is credited with
  weight 1/B to the config, to the chosen hyper-parameter's high-level arm and to the chosen value's low-level
  arm, so a complete batch is one pull with the batch's mean reward (the paper's per-batch update) and
  late or missing rewards never stall the bandit. The high-level arm receives the raw reward, not an
  improvement over the incumbent: a hyper-parameter is worth changing when configurations reached by
  changing it score well.

Hyper-parameters with a single value are not arms. Rewards reported for configurations this policy did not
choose (imported logs, another policy's decisions) update the per-configuration statistics only.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from autorag_hp.decision import Decision
from autorag_hp.policies.base import Policy, Selection
from autorag_hp.space import Config


class HierarchicalPolicy(Policy):
    name = "hierarchical"

    def __init__(self, space, seed: int = 0, initial: dict[str, Any] | None = None):
        super().__init__(space, seed)
        self.tunable = [p.name for p in self.space.params if len(p) > 1]
        self._pos = {p: j for j, p in enumerate(self.tunable)}
        k = len(self.tunable)
        self._hn, self._hs, self._hp = np.zeros(k), np.zeros(k), np.zeros(k)
        self._ln = {p: np.zeros(len(self.space[p])) for p in self.tunable}
        self._ls = {p: np.zeros(len(self.space[p])) for p in self.tunable}
        self._lp = {p: np.zeros(len(self.space[p])) for p in self.tunable}
        if initial is not None:
            init = self.space.validate(initial)
        else:
            rng = np.random.default_rng([seed, 7919])
            init = Config({p.name: p.values[int(rng.integers(len(p)))] for p in self.space.params})
        self.initial = init
        self._initial_digits = {p.name: p.index(init[p.name]) for p in self.space.params}
        self._space_pos = {p.name: i for i, p in enumerate(self.space.params)}
        self._radix = [len(p) for p in self.space.params]
        self._inc_cache: list[int] | None = None
        self._inc_idx: dict[str, int] = {}
        strides, acc = [], 1
        for r in reversed(self._radix):
            strides.append(acc)
            acc *= r
        self._stride = list(reversed(strides))

    def params(self) -> dict[str, Any]:
        return {"initial": self.initial.to_dict()}

    # --- the incumbent ----------------------------------------------------------------------------------
    def incumbent_index(self, p: str) -> int:
        """Index of the incumbent value of ``p`` (cached until ``p``'s low-level statistics change)."""
        v = self._inc_idx.get(p)
        if v is None:
            v = self._inc_idx[p] = self._compute_incumbent_index(p)
        return v

    def _compute_incumbent_index(self, p: str) -> int:
        n, s = self._ln[p], self._ls[p]
        if not (n > 0).any():
            return self._initial_digits[p]
        means = np.where(n > 0, s / np.maximum(n, 1e-300), -np.inf)
        best = np.flatnonzero(means == means.max())
        init = self._initial_digits[p]
        return int(init if init in best else best[0])

    def incumbent_digits(self) -> list[int]:
        digits = self._inc_cache
        if digits is None:
            digits = [self._initial_digits[p.name] for p in self.space.params]
            for p in self.tunable:
                digits[self._space_pos[p]] = self.incumbent_index(p)
            self._inc_cache = digits
        return list(digits)

    def _config_of(self, digits: list[int]) -> Config:
        idx = 0
        for d, r in zip(digits, self._radix):
            idx = idx * r + d
        return self.space.config_at(idx)

    @property
    def incumbent(self) -> Config:
        """The configuration the others are held at (see the module docstring)."""
        return self._config_of(self.incumbent_digits())

    def recommendation_scores(self, stats) -> np.ndarray:
        """Rule ``"policy"``: the incumbent first, then every other configuration by the ``"posterior"`` rule.

        The incumbent is built from each hyper-parameter's best value in its low-level bandit, whose
        statistics pool every configuration that varied it: better supported than any one configuration's
        own mean, and possibly a combination never tried as a whole (then its ``count`` is 0)."""
        from autorag_hp.ranking import scores

        out = scores(stats, "posterior")
        if (self._hn > 0).any():
            out[self._index(self.incumbent)] = np.inf
        return out

    # --- selection --------------------------------------------------------------------------------------
    def _choose_param(self, rng: np.random.Generator) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _choose_value(self, p: str, rng: np.random.Generator) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _select(self, rng: np.random.Generator) -> Selection:
        digits = self.incumbent_digits()
        if not self.tunable:
            return Selection(self._config_of(digits))
        j = self._choose_param(rng)
        p = self.tunable[j]
        digits[self._space_pos[p]] = self._choose_value(p, rng)
        return Selection(self._config_of(digits), {"param": p})

    # --- credit -----------------------------------------------------------------------------------------
    def _arm(self, config: Config, decision: Decision) -> tuple[int, str, int] | None:
        p = decision.policy.get("param")
        if p not in self._pos:
            return None
        pos = self._space_pos[p]
        return self._pos[p], p, (self._index(config) // self._stride[pos]) % self._radix[pos]

    def _on_decision(self, idx: int, config: Config, decision: Decision) -> None:
        arm = self._arm(config, decision)
        if arm:
            j, p, v = arm
            self._hp[j] += 1.0
            self._lp[p][v] += 1.0

    def _on_update(self, idx: int, config: Config, reward: float, weight: float, decision: Decision) -> None:
        arm = self._arm(config, decision)
        if arm:
            j, p, v = arm
            self._hn[j] += weight
            self._hs[j] += weight * reward
            self._hp[j] = max(0.0, self._hp[j] - weight)
            self._ln[p][v] += weight
            self._ls[p][v] += weight * reward
            self._lp[p][v] = max(0.0, self._lp[p][v] - weight)
            self._inc_cache = None
            self._inc_idx.pop(p, None)

    def _on_release(self, idx: int, config: Config, weight: float, decision: Decision) -> None:
        arm = self._arm(config, decision)
        if arm:
            j, p, v = arm
            self._hp[j] = max(0.0, self._hp[j] - weight)
            self._lp[p][v] = max(0.0, self._lp[p][v] - weight)

    # --- introspection and serialization ----------------------------------------------------------------
    def arm_stats(self) -> dict[str, Any]:
        """High- and low-level statistics, for dashboards: {param: {"n", "mean", "values": {value: (n, mean)}}}."""
        out: dict[str, Any] = {}
        for j, p in enumerate(self.tunable):
            vals = {}
            for v, value in enumerate(self.space[p].values):
                n = float(self._ln[p][v])
                vals[json.dumps(value)] = (n, float(self._ls[p][v] / n) if n > 0 else None)
            n = float(self._hn[j])
            out[p] = {"n": n, "mean": float(self._hs[j] / n) if n > 0 else None, "values": vals}
        return out

    def _extra_state(self) -> dict[str, Any]:
        high = {p: [float(self._hn[j]), float(self._hs[j]), float(self._hp[j])] for j, p in enumerate(self.tunable)}
        low = {
            p: {
                json.dumps(value): [float(self._ln[p][v]), float(self._ls[p][v]), float(self._lp[p][v])]
                for v, value in enumerate(self.space[p].values)
                if self._ln[p][v] > 0 or self._lp[p][v] > 0
            }
            for p in self.tunable
        }
        return {"high": high, "low": low}

    def _on_forget(self, gamma: float) -> None:
        self._hn *= gamma
        self._hs *= gamma
        for arms in (self._ln, self._ls):
            for arr in arms.values():
                arr *= gamma
        self._inc_cache = None
        self._inc_idx.clear()

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self._inc_cache = None
        self._inc_idx.clear()
        for j, p in enumerate(self.tunable):
            self._hn[j], self._hs[j], self._hp[j] = extra.get("high", {}).get(p, [0.0, 0.0, 0.0])
            self._ln[p][:] = 0
            self._ls[p][:] = 0
            self._lp[p][:] = 0
            for key, (n, s, pending) in extra.get("low", {}).get(p, {}).items():
                try:
                    v = self.space[p].index(json.loads(key))
                except ValueError:
                    continue  # a value the space no longer has
                self._ln[p][v], self._ls[p][v], self._lp[p][v] = n, s, pending
