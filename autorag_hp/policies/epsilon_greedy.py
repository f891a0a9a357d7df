"""Epsilon-greedy over whole configurations."""

from __future__ import annotations

from typing import Any

import numpy as np

from autorag_hp.policies.base import Policy, Selection


class EpsilonGreedyPolicy(Policy):
    """With probability ``epsilon_t`` a uniformly random configuration, else the best observed mean.

    ``epsilon_t = epsilon / (1 + decay * t)`` (``decay=0``: constant). Before any reward the choice is random;
    ties between equal means are broken at random.
    """

    name = "epsilon_greedy"

    def __init__(self, space, seed: int = 0, epsilon: float = 0.1, decay: float = 0.0):
        super().__init__(space, seed)
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon!r}")
        if not decay >= 0:
            raise ValueError(f"decay must be >= 0, got {decay!r}")
        self.epsilon = float(epsilon)
        self.decay = float(decay)

    def params(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "decay": self.decay}

    def _select(self, rng: np.random.Generator) -> Selection:
        eps = self.epsilon / (1.0 + self.decay * self.t)
        explore = rng.random() < eps
        if explore or not (self._n > 0).any():
            return Selection(self.space.config_at(int(rng.integers(self.space.size))), {"explore": True})
        means = np.where(self._n > 0, self._s / np.maximum(self._n, 1e-300), -np.inf)
        return Selection(self.space.config_at(self._argmax(means, rng)), {"explore": False})
