"""Hier-TS: the hierarchical bandit with Thompson sampling at both levels."""

from __future__ import annotations

from typing import Any

import numpy as np

from autorag_hp.policies.base import gaussian_sample
from autorag_hp.policies.hierarchical import HierarchicalPolicy


class HierTSPolicy(HierarchicalPolicy):
    """Like Hier-UCB, but each level draws from the Gaussian posterior of each arm's mean (the prior of
    :class:`~autorag_hp.policies.thompson.ThompsonPolicy`: centred on the pooled mean, pooled variance,
    ``prior_n`` pseudo-observations) and plays the largest draw."""

    name = "hier_ts"

    def __init__(self, space, seed: int = 0, prior_n: float = 1.0, initial=None):
        super().__init__(space, seed, initial)
        if not prior_n > 0:
            raise ValueError(f"prior_n must be > 0, got {prior_n!r}")
        self.prior_n = float(prior_n)

    def params(self) -> dict[str, Any]:
        return {"prior_n": self.prior_n, **super().params()}

    def _choose_param(self, rng: np.random.Generator) -> int:
        draws = gaussian_sample(self._hn, self._hs, self.pooled_mean, self.pooled_var, rng, self.prior_n)
        return self._argmax(draws, rng)

    def _choose_value(self, p: str, rng: np.random.Generator) -> int:
        draws = gaussian_sample(self._ln[p], self._ls[p], self.pooled_mean, self.pooled_var, rng, self.prior_n)
        return self._argmax(draws, rng)
