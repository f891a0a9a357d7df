"""Uniform random search over whole configurations."""

from __future__ import annotations

import numpy as np

from autorag_hp.policies.base import Policy, Selection


class RandomPolicy(Policy):
    """Each decision draws a configuration uniformly at random (with replacement)."""

    name = "random"

    def _select(self, rng: np.random.Generator) -> Selection:
        return Selection(self.space.config_at(int(rng.integers(self.space.size))))
