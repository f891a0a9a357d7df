"""What to deploy: every configuration's estimate and interval, and the recommendation — in one place.

Every consumer reads its ranking here: :meth:`Tuner.best`, :meth:`Policy.ranking`, the service's
``/v1/best``, ``/v1/arms`` and dashboard, ``tune``'s summary, the LangChain wrapper's ``best`` /
``best_values``, and the replay benchmark's deployed configuration and Recall@k. What a benchmark scores is
therefore exactly what a user gets.

The statistics (:class:`SampleStats`). Per configuration ``c``: ``n_c`` samples, their sum and sum of
squares. One sample is one *distinct question*: a (configuration, question) cell observed again (the same
question asked twice at temperature 0, or a replay stream that wraps around) is not a new independent sample;
its rewards are averaged into the cell's one value (see :meth:`Policy.update`). ``ȳ_c`` is the mean,
``s²_c`` the sample variance. The *pooled* within-configuration variance is
``σ² = Σ_c (n_c − 1) s²_c / Σ_c (n_c − 1)`` over configurations with ``n_c ≥ 2`` (degrees of freedom
``ν = Σ (n_c − 1)``); before any configuration has two samples it is the variance of all rewards.

The rules (``rule=``), each a score; the recommendation is the configuration of highest score (ties: more
samples, then configuration id):

* ``"mean"``: ``ȳ_c`` — the raw observed mean. A configuration seen once with a lucky reward wins; kept
  for comparison only.
* ``"lcb"``: ``ȳ_c − t_{0.975, ν} · σ / √n_c``, the lower end of a 95 % interval with the pooled spread
  (a configuration's own spread is unreliable at small ``n_c``: two equal rewards would give width 0).
* ``"posterior"``: the empirical-Bayes (James–Stein) shrunk mean ``μ₀ + B_c (ȳ_c − μ₀)`` with
  ``B_c = τ² / (τ² + σ²/n_c)``: configuration means are modelled as ``N(μ₀, τ²)``; ``μ₀`` is the mean of the
  tried configurations' means and ``τ² = max(Var_c ȳ_c − mean_c σ²/n_c, 0)`` (method of moments). A
  configuration seen once is pulled most of the way back to ``μ₀``; one seen often keeps its own mean.
  Until some configuration has two samples (no within-configuration spread yet), ``"lcb"`` and
  ``"posterior"`` rank by ``ȳ_c``: noise and differences cannot be told apart.
* ``"policy"`` (the default): the policy's own recommendation, :meth:`Policy.recommendation_scores` —
  ``additive_lucb`` ranks every configuration (tried or not) by its additive model's posterior mean; the
  hierarchical policies put their incumbent first, then the rest by ``"posterior"``; flat policies have no
  model and use ``"posterior"``.

Intervals (:class:`Estimate`): a 95 % Student-t interval of the configuration's mean, ``ȳ_c ± t_{0.975, n_c−1}
· s_c / √n_c`` (quantiles from scipy), clipped to the reward's range (declared by the caller, else the range
of all rewards seen). None for ``n_c = 1`` (one reward says nothing about spread: said so in ``note``); when all
of a configuration's rewards are equal its own spread is 0, so the interval uses the pooled ``σ`` instead and
says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from autorag_hp.policies.base import Policy
    from autorag_hp.space import Config, SearchSpace

RULES: tuple[str, ...] = ("policy", "posterior", "lcb", "mean")
LEVEL = 0.95


def check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"unknown ranking rule {rule!r}; choose one of {', '.join(RULES)}")
    return rule


def t_quantile(df: float, level: float = LEVEL) -> float:
    """The two-sided ``level`` quantile of Student's t with ``df`` degrees of freedom (inf for df < 1)."""
    if not df >= 1:
        return math.inf
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2.0, df))


@dataclass(frozen=True)
class SampleStats:
    """Per-configuration sample counts, sums and sums of squares (arrays over the space's indices), and the
    range of all rewards seen (``lo``, ``hi``; NaN before any)."""

    n: np.ndarray
    s: np.ndarray
    ss: np.ndarray
    lo: float = math.nan
    hi: float = math.nan

    @property
    def tried(self) -> np.ndarray:
        return np.flatnonzero(self.n > 0)

    def means(self) -> np.ndarray:
        """ȳ per configuration (NaN where never observed)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, self.s / np.maximum(self.n, 1e-300), np.nan)

    def pooled(self) -> tuple[float, float]:
        """(σ², ν): the pooled within-configuration variance and its degrees of freedom (see the module doc).

        Before any configuration has two samples: the variance of all rewards, with ν = (total samples − 1).
        """
        n, s, ss = self.n, self.s, self.ss
        multi = n >= 2 - 1e-9
        dof = float((n[multi] - 1).sum())
        if dof >= 1:
            within = ss[multi] - s[multi] ** 2 / n[multi]
            return max(float(within.sum()) / dof, 0.0), dof
        total = float(n.sum())
        if total >= 2:
            mean = float(s.sum()) / total
            return max(float(ss.sum()) / total - mean * mean, 0.0) * total / (total - 1), total - 1
        return math.nan, 0.0


@dataclass(frozen=True)
class Estimate:
    """One configuration's estimated mean reward with its 95 % interval, and the score it was ranked by.

    ``mean`` is the observed mean over its ``count`` samples (None when it was never tried: a model may
    still recommend it); ``lower`` / ``upper`` are None when the data supports no interval (``note`` says
    why); ``score`` is the ranking rule's value.
    """

    config: Config
    mean: float | None
    count: int
    lower: float | None
    upper: float | None
    std: float | None
    score: float
    rule: str = "policy"
    note: str = ""

    def __str__(self) -> str:
        body = ", ".join(f"{k}={v}" for k, v in self.config.items())
        mean = "   n/a" if self.mean is None else f"{self.mean:+.3f}"
        if self.lower is not None:
            ci = f"[{self.lower:+.3f}, {self.upper:+.3f}]"
        else:
            ci = f"({self.note})" if self.note else ""
        return f"{mean} {ci} n={self.count:<4d} {body}"

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "mean": self.mean, "count": self.count, "lower": self.lower,
                "upper": self.upper, "std": self.std, "score": _finite(self.score), "rule": self.rule,
                "note": self.note or None}


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def interval(n: float, s: float, ss: float, *, pooled_var: float = math.nan,
             bounds: tuple[float, float] | None = None, level: float = LEVEL) -> tuple[float | None, float | None, float | None, str]:
    """(lower, upper, std, note) of one configuration's mean from its sample statistics (see the module doc)."""
    if n < 2 - 1e-9:
        return None, None, None, "one reward: no interval" if n > 0 else "not tried"
    mean = s / n
    var = max(0.0, (ss - n * mean * mean) / (n - 1))
    note = ""
    if var <= 1e-12 * max(1.0, mean * mean):
        if not pooled_var > 0:
            return None, None, 0.0, f"all {int(round(n))} rewards equal"
        var, note = pooled_var, f"all {int(round(n))} rewards equal: interval from the pooled spread"
    half = t_quantile(n - 1, level) * math.sqrt(var / n)
    lo, hi = mean - half, mean + half
    if bounds is not None and all(math.isfinite(b) for b in bounds):
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return lo, hi, math.sqrt(var), note


def scores(stats: SampleStats, rule: str = "policy", policy: Policy | None = None) -> np.ndarray:
    """The rule's score of every configuration (−inf where the rule cannot rank it, e.g. never tried)."""
    check_rule(rule)
    if rule == "policy":
        own = policy.recommendation_scores(stats) if policy is not None else None
        if own is not None:
            return own
        rule = "posterior"
    n = stats.n
    out = np.full(n.size, -np.inf)
    tried = stats.tried
    if tried.size == 0:
        return out
    ybar = stats.s[tried] / n[tried]
    if rule == "mean":
        out[tried] = ybar
        return out
    var, dof = stats.pooled()
    if not var > 0 or not (n >= 2 - 1e-9).any():
        # every reward equal, or no configuration seen twice: within-configuration noise cannot be told apart
        # from differences between configurations, so there is nothing to shrink or widen by
        out[tried] = ybar
        return out
    if rule == "lcb":
        out[tried] = ybar - t_quantile(dof) * np.sqrt(var / n[tried])
        return out
    # posterior: empirical-Bayes shrinkage towards the mean of the tried configurations' means
    mu0 = float(ybar.mean())
    noise = var / n[tried]
    tau2 = max(float(ybar.var()) - float(noise.mean()), 0.0) if tried.size > 1 else 0.0
    shrink = tau2 / (tau2 + noise)
    out[tried] = mu0 + shrink * (ybar - mu0)
    return out


def order(space: SearchSpace, stats: SampleStats, score: np.ndarray, k: int | None = None,
          id_rank: np.ndarray | None = None) -> np.ndarray:
    """Indices of the rankable configurations, best score first (ties: more samples, then configuration id)."""
    ok = np.flatnonzero(score > -np.inf)
    if ok.size == 0:
        return ok
    if id_rank is not None:
        ids = id_rank[ok]
    elif ok.size * 4 > space.size:
        ids = space.id_rank()[ok]
    else:  # a few tried configurations of a large space: their ids only
        ids = np.array([space.config_at(int(i)).id for i in ok])
    idx = np.lexsort((ids, -stats.n[ok], -score[ok]))
    top = ok[idx]
    return top if k is None else top[:k]


def top_indices(space: SearchSpace, stats: SampleStats, k: int, rule: str = "policy", policy: Policy | None = None,
                id_rank: np.ndarray | None = None) -> np.ndarray:
    """The recommendation's top ``k`` configuration indices (what :func:`rank` returns, without the rows)."""
    return order(space, stats, scores(stats, rule, policy), k, id_rank)


def rank(space: SearchSpace, stats: SampleStats, k: int | None = 5, *, rule: str = "policy",
         policy: Policy | None = None, bounds: tuple[float, float] | None = None) -> list[Estimate]:
    """The top ``k`` (all with ``None``) as :class:`Estimate` rows, best first, under ``rule``."""
    sc = scores(stats, rule, policy)
    idx = order(space, stats, sc, k)
    if bounds is None and math.isfinite(stats.lo):
        bounds = (stats.lo, stats.hi)
    pooled_var, _ = stats.pooled()
    rows = []
    for i in idx.tolist():
        n, s, ss = float(stats.n[i]), float(stats.s[i]), float(stats.ss[i])
        lo, hi, sd, note = interval(n, s, ss, pooled_var=pooled_var, bounds=bounds)
        rows.append(Estimate(space.config_at(i), s / n if n > 0 else None, int(round(n)), lo, hi, sd,
                             float(sc[i]), rule, note))
    return rows
