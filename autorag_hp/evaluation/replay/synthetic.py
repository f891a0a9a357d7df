"""Synthetic tables with a planted ground truth, for demos, engine tests and the planted-optimum check (real
tables come from the grid runner).

A :class:`SyntheticTable` gives every configuration a true quality (``means``) built from additive per-value
effects plus small pairwise interactions, and optionally a token cost per value. Since the truth is known, a
policy's Recall@k and regret against the true best can be computed exactly. Three ways to use it:

* :meth:`~SyntheticTable.replay_table`: a :class:`ReplayTable` of metric cells, read by the paper's reward and
  the benchmark like a grid table: configuration ``c`` answers question ``q`` correctly when
  ``quality(c) − difficulty(q) + N(0, 1) > 0``, and spends its token cost × U(0.8, 1.2) tokens;
* :meth:`~SyntheticTable.rewards`: a ``configurations × questions`` reward matrix, the true mean plus
  N(0, noise²) per cell, for :func:`~autorag_hp.evaluation.replay.replay` with ``truth=table.means``;
* :meth:`~SyntheticTable.drive`: a policy driven directly on a fresh noisy reward per pull.

>>> from autorag_hp.space import SearchSpace
>>> t = SyntheticTable.make(SearchSpace({"a": [0, 1, 2], "b": [0, 1]}), seed=0)
>>> t.replay_table(10).values["answer_contains_reference"].shape, t.rewards(4).shape
((6, 10), (6, 4))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autorag_hp.evaluation.replay.table import ReplayTable
from autorag_hp.space import Config, SearchSpace


@dataclass
class SyntheticTable:
    """A planted truth: ``means[i]`` is the true quality of ``space.config_at(i)``, ``tokens[i]`` its token cost
    (``None``: no token cost planted), ``noise`` the sd of a reward around its mean (:meth:`rewards`,
    :meth:`drive`)."""

    space: SearchSpace
    means: np.ndarray
    noise: float
    seed: int
    effect: float
    interaction: float
    tokens: np.ndarray | None = None
    _rng_state: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def make(
        cls,
        space: SearchSpace | dict[str, Any],
        *,
        seed: int = 0,
        effect: float = 0.25,
        interaction: float = 0.05,
        noise: float = 0.3,
        tokens_effect: float | None = 300.0,
    ) -> SyntheticTable:
        """Per-value effects ~ N(0, effect²) summed over parameters, plus pairwise interactions ~
        N(0, interaction²) (the value indices mod 16); with ``tokens_effect`` a token cost of 100 plus, per
        parameter, U(0, tokens_effect) per value.

        A table with a token cost draws from the stream ``(seed, 11)``, one without from ``(seed, 1)``: the draws
        of the tables behind the committed synthetic-bench and planted-optimum results."""
        space = space if isinstance(space, SearchSpace) else SearchSpace(space)
        rng = np.random.default_rng([seed, 1 if tokens_effect is None else 11])
        P = len(space.params)
        effects = [rng.normal(0.0, effect, len(p)) for p in space.params]
        tok = None if tokens_effect is None else [rng.uniform(0.0, tokens_effect, len(p)) for p in space.params]
        inter = rng.normal(0.0, interaction, (P, P, 16, 16))
        digits = np.array([space.digits(space.config_at(i)) for i in range(space.size)]).reshape(space.size, P)
        means = np.zeros(space.size)
        tokens = None if tok is None else np.full(space.size, 100.0)
        for a in range(P):
            means += effects[a][digits[:, a]]
            if tokens is not None:
                tokens += tok[a][digits[:, a]]
            for b in range(a + 1, P):
                means += inter[a, b, digits[:, a] % 16, digits[:, b] % 16]
        return cls(space, means, noise, seed, effect, interaction, tokens, rng.bit_generator.state)

    def _rng(self) -> np.random.Generator:
        """The stream right after the planted structure (the same for every call)."""
        rng = np.random.default_rng()
        rng.bit_generator.state = self._rng_state
        return rng

    def replay_table(self, n_questions: int = 100, *, difficulty_sd: float = 1.0) -> ReplayTable:
        """Metric cells ``answer_contains_reference`` (0/1) and ``total_tokens`` for ``n_questions`` questions of
        difficulty ~ N(0, difficulty_sd²) (needs a token cost: ``make(tokens_effect=...)``)."""
        if self.tokens is None:
            raise ValueError("a replay table needs a token cost per configuration: SyntheticTable.make(tokens_effect=...)")
        rng = self._rng()
        diff = rng.normal(0.0, difficulty_sd, n_questions)
        noise = rng.standard_normal((self.space.size, n_questions))
        correct = (self.means[:, None] - diff[None, :] + noise > 0).astype(float)
        tq = self.tokens[:, None] * rng.uniform(0.8, 1.2, (1, n_questions))
        values = {"answer_contains_reference": correct, "total_tokens": np.round(tq)}
        qs = [f"q{j:04d}" for j in range(n_questions)]
        meta = {"synthetic": {"seed": self.seed, "effect": self.effect, "interaction": self.interaction}}
        return ReplayTable(self.space, qs, values, meta)

    def with_needle(self, lift: float = 0.3, n_params: int = 3) -> SyntheticTable:
        """A copy whose optimum is a ``n_params``-way *needle*: in each of the ``n_params`` parameters with the
        most values (ties: the first), the value of lowest marginal mean; the configurations holding all of them
        (individually bad values) are raised, keeping their order, to ``lift`` above the best other one.

        >>> t = SyntheticTable.make(SearchSpace({"a": [0, 1], "b": [0, 1], "c": [0, 1], "d": [0, 1]}), seed=0)
        >>> int((t.with_needle().means > t.means.max()).sum())
        2
        """
        P = len(self.space.params)
        if not 1 <= n_params <= P:
            raise ValueError(f"n_params must be between 1 and the {P} parameters, got {n_params!r}")
        digits = np.array(np.unravel_index(np.arange(self.space.size), [len(p) for p in self.space.params]))
        chosen = sorted(range(P), key=lambda j: (-len(self.space.params[j]), j))[:n_params]
        hit = np.ones(self.space.size, dtype=bool)
        for j in chosen:
            marg = np.bincount(digits[j], self.means, len(self.space.params[j]))
            hit &= digits[j] == int(np.argmin(marg))
        means = self.means.copy()
        means[hit] += means[~hit].max() + lift - means[hit].min()
        return SyntheticTable(self.space, means, self.noise, self.seed, self.effect, self.interaction, self.tokens,
                              self._rng_state)

    def expected_rewards(self, w: float, *, t_max: float = 1000.0, difficulty_sd: float = 1.0) -> np.ndarray:
        """Each configuration's expected paper reward ``w·acc − (1−w)·tokens/t_max`` over the questions of
        :meth:`replay_table` (the truth its held-out questions estimate): ``P(correct) = Φ(μ_c / sqrt(1 +
        difficulty_sd²))``, ``acc = 2 P − 1``, and the planted token cost (its U(0.8, 1.2) factor has mean 1)."""
        if self.tokens is None:
            raise ValueError("expected paper rewards need a token cost: SyntheticTable.make(tokens_effect=...)")
        from scipy.special import ndtr

        p = ndtr(self.means / np.sqrt(1.0 + difficulty_sd**2))
        return w * (2.0 * p - 1.0) - (1.0 - w) * self.tokens / t_max

    def rewards(self, n_questions: int) -> np.ndarray:
        """A reward per (configuration, question): the true mean plus N(0, noise²), shape ``(C, n_questions)``."""
        rng = np.random.default_rng([self.seed, 2])
        return self.means[:, None] + self.noise * rng.standard_normal((self.space.size, n_questions))

    def sample(self, config: Config, rng: np.random.Generator) -> float:
        """One noisy reward of ``config``: its true mean plus N(0, noise²) drawn from ``rng``."""
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
