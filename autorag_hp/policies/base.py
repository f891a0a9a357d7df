"""The policy base class: it owns per-configuration statistics, ranking and serialization.

A subclass implements one method, :meth:`Policy._select`, and may override :meth:`Policy._on_update`
and :meth:`Policy._on_decision` to keep extra statistics (as the hierarchical policies do).

How state evolves (the contract every policy keeps, and the reason a reopened tuner continues exactly):

* The state is a *fold* over the event log: ``observe_decision(config, decision)`` once per decision (a batch
  of B suggestions is one decision), ``update(config, reward, weight, decision)`` once per report, and
  ``release(config, weight, decision)`` once per expired trial. Nothing else changes it; :meth:`select` is pure.
  ``decision`` is a :class:`~autorag_hp.decision.Decision` (a policy's bare info dict is accepted too): the
  hooks read their own keys from ``decision.policy`` and the tuner's (number, slot, batch, question) as fields.
* The random generator for decision ``t`` is derived from ``(seed, t)``, so the same seed and the same events
  give the same next decision in any process, with no generator state to persist.
* Rewards are credited with weight ``1/B``: a fully reported batch counts as one pull with the batch's mean
  reward; a partly reported batch counts fractionally; nothing waits for stragglers.
* Trials that are suggested but not yet reported are *pending*. Flat UCB and the hierarchical policies count
  pending pulls in their exploration bonus so that concurrent requests spread over arms instead of all
  taking the same untried one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from autorag_hp.decision import Decision
from autorag_hp.ranking import Estimate, SampleStats, rank
from autorag_hp.space import Config, SearchSpace


@dataclass(frozen=True)
class Selection:
    """What :meth:`Policy.select` returns: the configuration and what the policy needs to credit it."""

    config: Config
    info: dict[str, Any] = field(default_factory=dict)


class Policy:
    """Base class of all policies. ``seed`` fixes every random choice; ties are broken by that generator."""

    name: ClassVar[str] = "base"

    def __init__(self, space: SearchSpace, seed: int = 0):
        if not isinstance(space, SearchSpace):
            space = SearchSpace(space)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        self.space = space
        self.seed = seed
        size = space.size
        self.t = 0  # decisions observed so far
        self._n = np.zeros(size)  # credited pulls per configuration (weighted)
        self._s = np.zeros(size)  # sum of weighted rewards
        self._pending = np.zeros(size)  # decisions not yet credited
        self._reward_sum = 0.0  # pooled statistics of all credited rewards
        self._reward_sumsq = 0.0
        self._reward_n = 0.0
        self._idx: dict[str, int] = {}
        # the ranking's samples: one per distinct (configuration, question) cell, unweighted (see ranking.py)
        self._cn = np.zeros(size)
        self._cs = np.zeros(size)
        self._css = np.zeros(size)
        self._cells: dict[tuple[int, Any], list[float]] = {}
        self._lo, self._hi = math.inf, -math.inf

    # --- parameters (configuration, kept apart from state) ----------------------------------------------
    def params(self) -> dict[str, Any]:
        """The policy's hyper-parameters (not its state)."""
        return {}

    # --- helpers ----------------------------------------------------------------------------------------
    def _rng(self, stream: int = 0) -> np.random.Generator:
        """The generator of the current decision (derived from seed and t; created only when used)."""
        return _LazyRng((self.seed, self.t, stream))  # type: ignore[return-value]

    def _index(self, config: Config) -> int:
        idx = self._idx.get(config.id)
        if idx is None:
            idx = self.space.index(config)
            self._idx[config.id] = idx
        return idx

    @staticmethod
    def _argmax(scores: np.ndarray, rng: np.random.Generator) -> int:
        """Index of the maximum, ties broken uniformly at random by ``rng``."""
        i = int(scores.argmax())
        top = scores[i]
        if top != np.inf and (scores == top).sum() == 1:
            return i
        best = np.flatnonzero(scores == top)
        return int(best[0]) if best.size == 1 else int(best[rng.integers(best.size)])

    @property
    def pooled_mean(self) -> float:
        return self._reward_sum / self._reward_n if self._reward_n > 0 else 0.0

    @property
    def pooled_var(self) -> float:
        """Variance of all credited rewards; 1.0 until two rewards were seen (a neutral scale)."""
        if self._reward_n < 2:
            return 1.0
        m = self.pooled_mean
        var = self._reward_sumsq / self._reward_n - m * m
        return max(var, 1e-6)

    def means(self) -> np.ndarray:
        """Observed mean reward per configuration (NaN where never credited)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self._n > 0, self._s / np.maximum(self._n, 1e-300), np.nan)

    # --- the interface ----------------------------------------------------------------------------------
    def select(self) -> Selection:
        """Choose the configuration for the next decision. Pure: it changes no state."""
        return self._select(self._rng())

    def _select(self, rng: np.random.Generator) -> Selection:  # pragma: no cover - abstract
        raise NotImplementedError

    def observe_decision(self, config: Config, decision: Decision | dict[str, Any] | None = None) -> None:
        """Record that a decision was made (called once per batch, in event-log order)."""
        idx = self._index(config)
        self._pending[idx] += 1.0
        self._on_decision(idx, config, Decision.from_info(decision))
        self.t += 1

    def update(self, config: Config, reward: float, weight: float = 1.0,
               decision: Decision | dict[str, Any] | None = None) -> None:
        """Credit ``reward`` to ``config`` with ``weight`` (1/B for a batch of B)."""
        decision = Decision.from_info(decision)
        reward = float(reward)
        if not math.isfinite(reward):
            raise ValueError(f"reward must be finite, got {reward!r}")
        idx = self._index(config)
        self._n[idx] += weight
        self._s[idx] += weight * reward
        self._pending[idx] = max(0.0, self._pending[idx] - weight)
        self._reward_n += weight
        self._reward_sum += weight * reward
        self._reward_sumsq += weight * reward * reward
        self._add_sample(idx, reward, decision.question)
        self._on_update(idx, config, reward, weight, decision)

    def _add_sample(self, idx: int, reward: float, question: Any) -> None:
        """Fold one reward into the ranking's samples. A (configuration, question) cell seen before is not a new
        sample: its rewards are averaged into the cell's one value (a temperature-0 answer asked again says
        nothing new about the configuration; a sampled one is a second draw of the same cell)."""
        self._lo, self._hi = min(self._lo, reward), max(self._hi, reward)
        cell = None
        if question is not None:
            key = (idx, question)
            cell = self._cells.get(key)
            if cell is None:
                self._cells[key] = [1.0, reward]
        if cell is None:
            self._cn[idx] += 1.0
            self._cs[idx] += reward
            self._css[idx] += reward * reward
            return
        old = cell[1] / cell[0]
        cell[0] += 1.0
        cell[1] += reward
        new = cell[1] / cell[0]
        self._cs[idx] += new - old
        self._css[idx] += new * new - old * old

    def sample_stats(self) -> SampleStats:
        """The ranking's statistics: per configuration, samples (distinct questions), their sum and sum of squares."""
        return SampleStats(self._cn, self._cs, self._css, self._lo if self._cn.any() else math.nan,
                           self._hi if self._cn.any() else math.nan)

    def recommendation_scores(self, stats: SampleStats) -> np.ndarray | None:
        """The policy's own ranking score of every configuration (rule ``"policy"``); None: the ``"posterior"``
        rule. Model-based policies override it (see :mod:`autorag_hp.ranking`)."""
        return None

    def release(self, config: Config, weight: float = 1.0, decision: Decision | dict[str, Any] | None = None) -> None:
        """A pending trial expired without a reward: drop its pending weight."""
        idx = self._index(config)
        self._pending[idx] = max(0.0, self._pending[idx] - weight)
        self._on_release(idx, config, weight, Decision.from_info(decision))

    def forget(self, gamma: float) -> None:
        """Discount every credited statistic by ``gamma`` (drift): per-configuration counts and sums, the pooled
        moments, the ranking's samples, and through :meth:`_on_forget` a subclass's own; pending counts stay as
        they are. Cells seen before the discount no longer de-duplicate later rewards of the same question."""
        self._n *= gamma
        self._s *= gamma
        self._reward_n *= gamma
        self._reward_sum *= gamma
        self._reward_sumsq *= gamma
        self._cn *= gamma
        self._cs *= gamma
        self._css *= gamma
        self._cells.clear()  # under drift an old answer is no longer the configuration's answer: a repeat counts
        self._on_forget(gamma)

    def _on_decision(self, idx: int, config: Config, decision: Decision) -> None:
        pass

    def _on_forget(self, gamma: float) -> None:
        """Discount the subclass's own credited statistics, and drop what is cached from them."""

    def _on_update(self, idx: int, config: Config, reward: float, weight: float, decision: Decision) -> None:
        pass

    def _on_release(self, idx: int, config: Config, weight: float, decision: Decision) -> None:
        pass

    @property
    def exhausted(self) -> bool:
        """True when the policy has nothing left to suggest (only grid search ever is)."""
        return False

    def ranking(self, k: int | None = None, rule: str = "policy") -> list[Estimate]:
        """The ranking module's rows (:func:`autorag_hp.ranking.rank`) for this policy's statistics: the
        recommendation first, each with its estimate and interval."""
        return rank(self.space, self.sample_stats(), k, rule=rule, policy=self)

    # --- serialization ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain numbers keyed by arm id (configuration id): JSON-able, mergeable, warm-startable."""
        arms = {}
        for i in np.flatnonzero((self._n > 0) | (self._pending > 0) | (self._cn > 0)):
            cfg = self.space.config_at(int(i))
            arms[cfg.id] = [float(self._n[i]), float(self._s[i]), float(self._pending[i]), float(self._cn[i]),
                            float(self._cs[i]), float(self._css[i])]
        return {
            "policy": self.name,
            "params": self.params(),
            "seed": self.seed,
            "space": self.space.fingerprint,
            "t": self.t,
            "pooled": [self._reward_n, self._reward_sum, self._reward_sumsq],
            "range": [self._lo, self._hi] if self._cn.any() else None,
            "arms": arms,
            # the de-duplicated (configuration, question) cells, so a restored policy still averages a repeat
            "cells": [[self.space.config_at(int(i)).id, q, n, total] for (i, q), (n, total) in self._cells.items()],
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`. Arms the space no longer has are ignored; new arms start empty."""
        if state.get("policy") not in (None, self.name):
            raise ValueError(f"state is of policy {state.get('policy')!r}, not {self.name!r}")
        ids = {self.space.config_at(i).id: i for i in range(self.space.size)}
        self._n[:] = 0
        self._s[:] = 0
        self._pending[:] = 0
        for arr in (self._cn, self._cs, self._css):
            arr[:] = 0
        self._cells.clear()
        for arm_id, values in state.get("arms", {}).items():
            i = ids.get(arm_id)
            if i is not None:
                self._n[i], self._s[i], self._pending[i] = values[:3]
                if len(values) >= 6:
                    self._cn[i], self._cs[i], self._css[i] = values[3:6]
        for arm_id, question, n, total in state.get("cells", []):
            i = ids.get(arm_id)
            if i is not None:
                self._cells[(i, question)] = [float(n), float(total)]
        self._lo, self._hi = state.get("range") or (math.inf, -math.inf)
        self.t = int(state.get("t", 0))
        self._reward_n, self._reward_sum, self._reward_sumsq = state.get("pooled", [0.0, 0.0, 0.0])
        self._load_extra_state(state.get("extra", {}))

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        pass

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({params}{', ' if params else ''}seed={self.seed}, t={self.t})"


_M64 = (1 << 64) - 1


def _splitmix64(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


class _LazyRng:
    """The random source of one decision, keyed by ``(seed, t, stream)``.

    Scalar draws (``integers(n)``, ``random()``) come from a SplitMix64 counter hash of the key: a few
    microseconds, which matters at tens of thousands of decisions per second. Anything else (vector draws,
    e.g. ``standard_normal``) goes to a numpy Generator seeded with the same key, created on first use.
    Both are pure functions of the key, so decisions replay exactly.
    """

    __slots__ = ("_key", "_gen", "_state")

    def __init__(self, key):
        self._key = key
        self._gen = None
        seed, t, stream = key
        self._state = _splitmix64(_splitmix64(_splitmix64(seed & _M64) ^ t) ^ stream)

    def _next(self) -> int:
        self._state = (self._state + 0x9E3779B97F4A7C15) & _M64
        return _splitmix64(self._state)

    def integers(self, n: int) -> int:
        """A uniform integer in [0, n) (modulo bias below 2**-40 for n < 2**24)."""
        return self._next() % int(n)

    def random(self) -> float:
        """A uniform float in [0, 1)."""
        return (self._next() >> 11) * (1.0 / 9007199254740992.0)

    def __getattr__(self, name):
        gen = self._gen
        if gen is None:
            gen = self._gen = np.random.default_rng(list(self._key))
        return getattr(gen, name)


def ucb_scores(n: np.ndarray, s: np.ndarray, pending: np.ndarray, t: float, alpha: float, prior_mean: float) -> np.ndarray:
    """UCB index ``mean + alpha * sqrt(ln t / n_eff)`` with ``n_eff = n + pending``; +inf where n_eff = 0.

    Arms with pending pulls but no credited reward use ``prior_mean`` (the pooled mean) as their mean.
    """
    n_eff = n + pending
    if n_eff.min() <= 0:
        return np.where(n_eff <= 0, np.inf, 0.0)  # only the untried compete: +inf each, ties broken at random
    if n.min() > 0:
        out = s / n
    else:
        out = s / np.maximum(n, 1e-300)
        out[n <= 0] = prior_mean
    bonus = np.divide(math.log(max(t, 1.0)), n_eff)
    np.sqrt(bonus, out=bonus)
    bonus *= alpha
    out += bonus
    return out


def gaussian_sample(
    n: np.ndarray, s: np.ndarray, prior_mean: float, var: float, rng: np.random.Generator, prior_n: float = 1.0
) -> np.ndarray:
    """One draw per arm from the Normal posterior of its mean (known variance ``var``).

    Prior ``N(prior_mean, var / prior_n)``: one pseudo-observation at the pooled mean.
    """
    post_n = n + prior_n
    post_mean = (s + prior_n * prior_mean) / post_n
    return post_mean + rng.standard_normal(n.shape) * np.sqrt(var / post_n)
