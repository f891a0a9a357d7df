"""Flat UCB1 over whole configurations, as the paper's baseline."""

from __future__ import annotations

from typing import Any

import numpy as np

from autorag_hp.policies.base import Policy, Selection, ucb_scores


class UCBPolicy(Policy):
    """UCB1: pick ``argmax mean(a) + alpha * sqrt(ln t / n(a))``.

    * Every configuration is tried once before any is repeated (untried arms score +inf; ties at random).
    * ``t`` is the number of decisions so far including this one; ``n(a)`` is the credited pulls of ``a``
      plus its pending ones (see :mod:`autorag_hp.policies.base`).
    * ``alpha`` (default 1.0, the paper's value) scales exploration; rewards are assumed to be of order 1.
    """

    name = "ucb"

    def __init__(self, space, seed: int = 0, alpha: float = 1.0):
        super().__init__(space, seed)
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha!r}")
        self.alpha = float(alpha)

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha}

    def _select(self, rng: np.random.Generator) -> Selection:
        scores = ucb_scores(self._n, self._s, self._pending, self.t + 1, self.alpha, self.pooled_mean)
        return Selection(self.space.config_at(self._argmax(scores, rng)))
