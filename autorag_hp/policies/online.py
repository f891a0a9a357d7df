"""``online``: a wrapper policy for live traffic: an exploration cap, a pinned fallback, discounting for drift.

>>> from autorag_hp.space import SearchSpace
>>> space = SearchSpace({"top_k": [1, 3, 5], "prompt": ["concise", "cite"]})
>>> pol = OnlinePolicy(space, inner="hier_ucb", explore=0.2, fallback={"top_k": 3, "prompt": "concise"})
>>> sel = pol.select()          # 80 % of decisions serve the current best (here still the fallback)
>>> sorted(sel.info)
['explore']

What it adds to any registered policy (``inner``):

* **Exploration cap** ``explore`` in [0, 1]: each decision explores (asks ``inner``) with probability
  ``explore``; otherwise it *exploits*: it serves the current best configuration. The coin comes from the
  decision's own random stream (seed, t), so replicas and replays agree. ``info["explore"]`` says which.
* **Current best**: among configurations with at least ``min_count`` samples (distinct questions), the
  inner policy's recommendation (:mod:`autorag_hp.ranking`, rule ``"policy"``). With a ``fallback`` (pinned)
  configuration, exploitation serves the fallback until the fallback itself has ``min_count`` samples, and
  afterwards only a configuration whose shrunk mean (rule ``"posterior"``) beats the fallback's displaces it. Without a fallback and with no configuration at ``min_count`` yet, exploitation serves the
  inner policy's incumbent (hierarchical policies) or asks the inner policy.
* **Drift** ``discount`` γ in (0, 1]: before each reward is credited every statistic (counts, sums, the
  hierarchical arms' counts and sums) is multiplied by γ, so a reward ``m`` reports old weighs ``γ**m``
  (discounted UCB / Thompson; effective memory about ``1 / (1 − γ)`` reports). γ = 1 keeps everything.

Exploited decisions carry no ``param`` in their info, so a hierarchical inner policy credits them to the
configuration's statistics only, never to its (hyper-parameter, value) arms: the arms learn from exploration.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from autorag_hp.decision import Decision
from autorag_hp.policies.base import Policy, Selection
from autorag_hp.space import Config


class OnlinePolicy(Policy):
    """Wraps ``inner`` (a registered policy name) with ``explore`` / ``fallback`` / ``min_count`` / ``discount``."""

    name = "online"

    def __init__(
        self,
        space,
        seed: int = 0,
        inner: str = "hier_ucb",
        inner_params: dict[str, Any] | None = None,
        explore: float = 1.0,
        fallback: dict[str, Any] | None = None,
        min_count: float = 3.0,
        discount: float = 1.0,
        tag: str | None = None,
    ):
        from autorag_hp.policies import make_policy

        super().__init__(space, seed)
        if inner == self.name:
            raise ValueError("the online policy cannot wrap itself")
        if not (isinstance(explore, int | float) and 0.0 <= explore <= 1.0):
            raise ValueError(f"explore must be a share of traffic in [0, 1], got {explore!r}")
        if not (isinstance(discount, int | float) and 0.0 < discount <= 1.0):
            raise ValueError(f"discount must be in (0, 1] (1 = no discounting), got {discount!r}")
        if not (isinstance(min_count, int | float) and min_count > 0):
            raise ValueError(f"min_count must be > 0, got {min_count!r}")
        self.inner = make_policy(inner, self.space, seed=seed, **dict(inner_params or {}))
        self.inner_name = inner
        self.inner_params = dict(inner_params or {})
        self.explore = float(explore)
        self.fallback = None if fallback is None else self.space.validate(fallback)
        self.min_count = float(min_count)
        self.discount = float(discount)
        self.tag = tag
        self.explored = 0  # decisions that explored / exploited so far (from the event fold)
        self.exploited = 0

    def params(self) -> dict[str, Any]:
        return {
            "inner": self.inner_name, "inner_params": self.inner.params(), "explore": self.explore,
            "fallback": None if self.fallback is None else self.fallback.to_dict(), "min_count": self.min_count,
            "discount": self.discount, "tag": self.tag,
        }

    # --- choice ------------------------------------------------------------------------------------------
    def best_config(self) -> Config | None:
        """The configuration exploitation serves now (see the module docstring); None: ask the inner policy."""
        from autorag_hp.ranking import order, scores

        stats = self.sample_stats()
        measured = stats.n >= self.min_count - 1e-9
        top = order(self.space, stats, np.where(measured, scores(stats, "policy", self), -np.inf), 1)
        best = self.space.config_at(int(top[0])) if top.size else None
        if self.fallback is not None:
            fi = self._index(self.fallback)
            if best is None or not measured[fi]:
                return self.fallback
            post = scores(stats, "posterior")  # displacing the pinned fallback takes evidence on both
            return best if post[top[0]] > post[fi] else self.fallback
        if best is not None:
            return best
        incumbent = getattr(self.inner, "incumbent", None)
        return incumbent if isinstance(incumbent, Config) else None

    def recommendation_scores(self, stats) -> np.ndarray | None:
        return self.inner.recommendation_scores(stats)

    def select(self) -> Selection:
        self.inner.t = self.t
        coin = self._rng(stream=0x0E).random()
        extra = {} if self.tag is None else {"pipeline": self.tag}
        if self.explore >= 1.0 or coin < self.explore:
            sel = self.inner.select()
            return Selection(sel.config, {**sel.info, **extra, "explore": True})
        cfg = self.best_config()
        if cfg is None:
            sel = self.inner.select()
            return Selection(sel.config, {**extra, "explore": False})
        return Selection(cfg, {**extra, "explore": False})

    def _select(self, rng) -> Selection:  # pragma: no cover - select() is overridden
        return self.select()

    # --- the fold ----------------------------------------------------------------------------------------
    def observe_decision(self, config: Config, decision: Decision | dict[str, Any] | None = None) -> None:
        decision = Decision.from_info(decision)
        if decision.policy.get("explore", True):
            self.explored += 1
        else:
            self.exploited += 1
        self.inner.observe_decision(config, decision)
        super().observe_decision(config, decision)

    def update(self, config: Config, reward: float, weight: float = 1.0,
               decision: Decision | dict[str, Any] | None = None) -> None:
        if not math.isfinite(float(reward)):
            raise ValueError(f"reward must be finite, got {reward!r}")
        if self.discount < 1.0:
            self.forget(self.discount)
            self.inner.forget(self.discount)
        decision = Decision.from_info(decision)
        self.inner.update(config, reward, weight, decision)
        super().update(config, reward, weight, decision)

    def release(self, config: Config, weight: float = 1.0, decision: Decision | dict[str, Any] | None = None) -> None:
        decision = Decision.from_info(decision)
        self.inner.release(config, weight, decision)
        super().release(config, weight, decision)

    @property
    def exhausted(self) -> bool:
        return self.explore >= 1.0 and self.inner.exhausted

    @property
    def explore_share(self) -> float:
        """Share of decisions so far that explored (NaN before any)."""
        total = self.explored + self.exploited
        return self.explored / total if total else math.nan

    @property
    def incumbent(self) -> Config | None:
        return self.best_config()

    def arm_stats(self) -> dict[str, Any]:
        fn = getattr(self.inner, "arm_stats", None)
        return fn() if fn is not None else {}

    def _extra_state(self) -> dict[str, Any]:
        return {"inner": self.inner.state_dict(), "explored": self.explored, "exploited": self.exploited}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        if "inner" in extra:
            self.inner.load_state_dict(extra["inner"])
        self.explored = int(extra.get("explored", 0))
        self.exploited = int(extra.get("exploited", 0))
