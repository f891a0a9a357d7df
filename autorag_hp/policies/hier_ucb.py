"""Hier-UCB, the AutoRAG-HP paper's method: UCB at both levels of the (hyper-parameter, value) hierarchy."""

from __future__ import annotations

from typing import Any

import numpy as np

from autorag_hp.policies.base import ucb_scores
from autorag_hp.policies.hierarchical import HierarchicalPolicy


class HierUCBPolicy(HierarchicalPolicy):
    """High level: ``argmax_p mean(p) + alpha_high * sqrt(ln t / n(p))`` over hyper-parameters; low level:
    ``argmax_v mean(p=v) + alpha_low * sqrt(ln t_p / n(p=v))`` over the chosen one's values; the rest stay at
    the incumbent. Untried arms come first at both levels (ties at random). See
    :mod:`autorag_hp.policies.hierarchical` for the incumbent, ``t`` and batch credit.

    >>> from autorag_hp.space import SearchSpace
    >>> pol = HierUCBPolicy(SearchSpace({"top_k": [1, 3], "prompt": ["a", "b"]}), seed=0)
    >>> sel = pol.select()
    >>> sel.info["param"] in ("top_k", "prompt")
    True
    """

    name = "hier_ucb"

    def __init__(self, space, seed: int = 0, alpha_high: float = 1.0, alpha_low: float = 1.0, initial=None):
        super().__init__(space, seed, initial)
        if not (alpha_high >= 0 and alpha_low >= 0):
            raise ValueError(f"alpha_high and alpha_low must be >= 0, got {alpha_high!r}, {alpha_low!r}")
        self.alpha_high = float(alpha_high)
        self.alpha_low = float(alpha_low)

    def params(self) -> dict[str, Any]:
        return {"alpha_high": self.alpha_high, "alpha_low": self.alpha_low, **super().params()}

    def _choose_param(self, rng: np.random.Generator) -> int:
        scores = ucb_scores(self._hn, self._hs, self._hp, self.t + 1, self.alpha_high, self.pooled_mean)
        return self._argmax(scores, rng)

    def _choose_value(self, p: str, rng: np.random.Generator) -> int:
        j = self._pos[p]
        t_p = self._hn[j] + self._hp[j] + 1
        scores = ucb_scores(self._ln[p], self._ls[p], self._lp[p], t_p, self.alpha_low, self.pooled_mean)
        return self._argmax(scores, rng)
