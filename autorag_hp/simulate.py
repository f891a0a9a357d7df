"""Synthetic reward tables for demos and engine tests (real tables come from the grid runner).

A :class:`SyntheticTable` gives every configuration a true mean built from additive per-value effects plus
small pairwise interactions, and draws per-question rewards around it with Gaussian noise. It has a known
ground truth, so a policy's Recall@k against the true top-k can be computed exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from autorag_hp.space import Config, SearchSpace


@dataclass
class SyntheticTable:
    space: SearchSpace
    means: np.ndarray  # true mean reward per configuration index
    noise: float
    seed: int

    @classmethod
    def make(cls, space: SearchSpace, *, seed: int = 0, noise: float = 0.3, interaction: float = 0.1,
             effect: float = 0.25) -> SyntheticTable:
        """True means: per-value effects ~ N(0, effect²) summed over parameters, plus pairwise interactions ~
        N(0, interaction²); a reward is the true mean plus N(0, noise²)."""
        rng = np.random.default_rng([seed, 1])
        effects = [rng.normal(0.0, effect, len(p)) for p in space.params]
        pair = rng.normal(0.0, interaction, (len(space.params), len(space.params), 16, 16))
        means = np.empty(space.size)
        for i in range(space.size):
            d = space.digits(space.config_at(i))
            m = sum(e[k] for e, k in zip(effects, d))
            for a in range(len(d)):
                for b in range(a + 1, len(d)):
                    m += pair[a, b, d[a] % 16, d[b] % 16]
            means[i] = m
        return cls(space, means, noise, seed)

    def top(self, k: int) -> list[int]:
        return list(np.argsort(-self.means, kind="stable")[:k])

    def sample(self, config: Config, rng: np.random.Generator) -> float:
        return float(self.means[self.space.index(config)] + self.noise * rng.standard_normal())

    def drive(self, policy, pulls: int, seed: int = 0):
        """Drive ``policy`` directly (the calls a Tuner makes, one reward per decision) for ``pulls`` noisy
        rewards drawn from ``seed``; returns the policy."""
        rng = np.random.default_rng([seed, 7])
        for _ in range(pulls):
            sel = policy.select()
            policy.observe_decision(sel.config, sel.info)
            policy.update(sel.config, self.sample(sel.config, rng), 1.0, sel.info)
        return policy


def replay(
    make_tuner: Callable[[], object], table: SyntheticTable, budget: int, *, seed: int = 0, k: int = 5
) -> dict[str, float]:
    """Run a tuner for ``budget`` rewards against the table; return recall@k, served reward and deployed score."""
    tuner = make_tuner()
    rng = np.random.default_rng([seed, 2])
    served = []
    for _ in range(budget):
        try:
            trial = tuner.suggest()
        except Exception:  # noqa: BLE001 - grid exhausted
            break
        r = table.sample(trial.config, rng)
        served.append(r)
        tuner.report(trial.id, r)
    best = tuner.best(k)
    chosen = {table.space.index(row.config) for row in best}
    deployed = table.means[table.space.index(best[0].config)] if best else float("nan")
    return {
        "recall": len(chosen & set(table.top(k))) / k,
        "served": float(np.mean(served)) if served else float("nan"),
        "deployed": float(deployed),
        "optimum": float(table.means.max()),
    }
