"""Thompson sampling over whole configurations with a Gaussian posterior on each mean."""

from __future__ import annotations

from typing import Any

import numpy as np

from autorag_hp.policies.base import Policy, Selection, gaussian_sample


class ThompsonPolicy(Policy):
    """Draw one sample of each configuration's mean reward from its posterior; play the largest.

    Prior: ``N(m, v / prior_n)`` per arm, where ``m`` and ``v`` are the mean and variance of all rewards seen
    so far (0 and 1 before any), and the likelihood is Normal with that same variance ``v``. Why: the
    rewards here are real-valued with an unknown scale (the paper's cost-aware reward lies in [-1, 1], an F1
    reward in [0, 1]), so a Beta-Bernoulli prior does not fit; centring the prior on the pooled mean makes an
    untried configuration exactly as attractive as an average one, so it is neither starved nor forced first,
    and plugging in the pooled variance makes the policy invariant to the reward's scale.
    """

    name = "thompson"

    def __init__(self, space, seed: int = 0, prior_n: float = 1.0):
        super().__init__(space, seed)
        if not prior_n > 0:
            raise ValueError(f"prior_n must be > 0, got {prior_n!r}")
        self.prior_n = float(prior_n)

    def params(self) -> dict[str, Any]:
        return {"prior_n": self.prior_n}

    def _select(self, rng: np.random.Generator) -> Selection:
        draws = gaussian_sample(self._n, self._s, self.pooled_mean, self.pooled_var, rng, self.prior_n)
        return Selection(self.space.config_at(self._argmax(draws, rng)))
