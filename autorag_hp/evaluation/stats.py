"""How sure is a benchmark result? Intervals over seeds, paired differences, and the grid's own noise ceiling.

A replay benchmark gives, for each method, one number per seed (Recall@5, regret, ...). "Within one std" says
nothing about whether two methods differ: the std describes the spread of single runs, not the uncertainty of
the mean, and it ignores that seeds are *paired* (seed s replays the same question stream for every method).
This module gives the right tools.

**t interval of a mean.** For n finite values x with mean x̄ and sample standard deviation
s = sqrt(Σ(x − x̄)² / (n − 1)), the level-L interval is

    x̄ ± t_{(1+L)/2, n−1} · s / √n

with t_{q, ν} the q-quantile of Student's t with ν degrees of freedom (``scipy.stats.t.ppf``).

**Paired difference.** For two methods on the same seeds, d_i = a_i − b_i and the t interval of d̄ is computed
as above. The difference is *resolved* when the interval excludes 0. Wins / ties / losses count seeds with
d_i > tie, |d_i| ≤ tie and d_i < −tie (flipped when lower is better).

**Digits.** An interval of half-width h supports the decimals up to h's first significant digit:
``digits = −floor(log10 h)``, clamped to [1, 4] (0.05 → 2, 0.013 → 2, 0.004 → 3, 0.3 → 1); without an
interval (h NaN, infinite or 0) two decimals are shown.

**Noise ceiling of the grid.** Grid's ranking is itself an estimate from a finite question set. With R the
(configurations × questions) reward matrix and score_c = mean_q R[c, q]:

- :func:`topk_stability`: resample the questions with replacement, recompute the scores, and report the mean
  share of the bootstrap top k that lies in the original top k;
- :func:`split_half_agreement`: split the questions at random into two equal halves and report the mean share
  of top k common to the two halves' rankings.

Top k everywhere = the k highest scores, ties broken by the lower configuration index. No method can be
judged more finely than these numbers: a method whose Recall@k is at the ceiling is as good as grid itself
on a fresh sample of questions.

**Normalized regret.** (max(scores) − scores[chosen]) / (max(scores) − median(scores)): 0 for the truly best
configuration, 1 for a median one (0.0 when max − median ≤ 1e-12).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PairedDiff", "t_interval", "t_columns", "paired_difference", "digits_for", "fmt_ci", "fmt_pm",
    "topk_stability", "split_half_agreement", "normalized_regret",
]


def _tq(level: float, df: int) -> float:
    from autorag_hp.ranking import t_quantile  # the one place t quantiles come from

    return t_quantile(df, level)


def t_interval(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lower, upper): Student t interval of the mean of the finite ``values`` (NaN ignored).

    ``mean ± t.ppf((1+level)/2, n−1) · s/√n`` with s the sample std (ddof 1). For n < 2 the bounds are NaN
    (and for n = 0 the mean too).
    """
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if n < 2:
        return mean, float("nan"), float("nan")
    half = _tq(level, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def t_columns(a: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise (mean, half-width) of the t interval for a (seeds × checkpoints) array, NaN ignored.

    Columns with fewer than 2 finite values get a NaN half-width (and a NaN mean when empty).
    """
    a = np.asarray(a, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    ok = ~np.isnan(a)
    n = ok.sum(axis=0)
    filled = np.where(ok, a, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=0) / n
        ss = (np.where(ok, a - mean, 0.0) ** 2).sum(axis=0)
        sd = np.sqrt(ss / (n - 1))
        from scipy.stats import t

        q = t.ppf((1.0 + level) / 2.0, np.maximum(n - 1, 1))
        half = np.where(n >= 2, q * sd / np.sqrt(np.maximum(n, 1)), np.nan)
    mean = np.where(n > 0, mean, np.nan)
    return mean, half


def digits_for(half_width: float) -> int:
    """Decimals an interval of ``half_width`` supports: −floor(log10 h), clamped to [1, 4]; 2 for NaN/inf/≤0.

    0.05 → 2, 0.013 → 2, 0.004 → 3, 0.3 → 1, 2.0 → 1, 0.00001 → 4.
    """
    h = float(half_width) if half_width is not None else float("nan")
    if not math.isfinite(h) or h <= 0:
        return 2
    d = -math.floor(math.log10(h) + 1e-12)
    return int(min(4, max(1, d)))


def fmt_ci(mean: float, lower: float, upper: float) -> str:
    """``"0.81 [0.76, 0.86]"`` with :func:`digits_for` of the half-width; ``"–"`` for a NaN mean, the mean
    alone (2 decimals) when the interval is undefined (fewer than 2 seeds)."""
    if mean is None or math.isnan(mean):
        return "–"
    if lower is None or upper is None or math.isnan(lower) or math.isnan(upper):
        return f"{mean:.2f}"
    d = digits_for((upper - lower) / 2.0)
    return f"{mean:.{d}f} [{lower:.{d}f}, {upper:.{d}f}]"


def fmt_pm(mean: float, half: float) -> str:
    """``"0.81 ± 0.05"`` (half = the interval's half-width) with :func:`digits_for`; ``"–"`` for a NaN mean,
    the mean alone (2 decimals) for a NaN half-width."""
    if mean is None or math.isnan(mean):
        return "–"
    if half is None or math.isnan(half):
        return f"{mean:.2f}"
    d = digits_for(half)
    return f"{mean:.{d}f} ± {half:.{d}f}"


@dataclass(frozen=True)
class PairedDiff:
    """Paired difference a − b over seeds: mean with its t interval, seeds used, and wins / ties / losses of a."""

    mean: float
    lower: float
    upper: float
    n: int
    wins: int
    ties: int
    losses: int

    @property
    def resolved(self) -> bool:
        """True when the interval excludes 0 (the sign of the difference is settled at the chosen level)."""
        return bool(self.lower > 0 or self.upper < 0)  # NaN compares False

    def __str__(self) -> str:
        if math.isnan(self.mean):
            return "–"
        wtl = f"{self.wins}/{self.ties}/{self.losses}"
        if math.isnan(self.lower) or math.isnan(self.upper):
            return f"{self.mean:+.2f} [–, –] {wtl}"
        d = digits_for((self.upper - self.lower) / 2.0)
        return f"{self.mean:+.{d}f} [{self.lower:+.{d}f}, {self.upper:+.{d}f}] {wtl}"


def paired_difference(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, level: float = 0.95,
                      tie: float = 1e-9, *, lower_is_better: bool = False) -> PairedDiff:
    """t interval of the mean of d = a − b over paired seeds (pairs with a NaN on either side are dropped).

    Wins / ties / losses count seeds where a is better than / within ``tie`` of / worse than b: better means
    d > tie, or d < −tie with ``lower_is_better`` (e.g. regret). The interval is of a − b either way.
    """
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in length: {a.size} vs {b.size}")
    ok = ~(np.isnan(a) | np.isnan(b))
    d = a[ok] - b[ok]
    mean, lo, hi = t_interval(d, level)
    up, down = int((d > tie).sum()), int((d < -tie).sum())
    wins, losses = (down, up) if lower_is_better else (up, down)
    return PairedDiff(mean, lo, hi, int(d.size), wins, int(d.size) - up - down, losses)


# ------------------------------------------------------------------------------------------ noise ceiling
def _topk_rows(M: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest entries of each row of M, ties broken by the lower column index."""
    return np.argsort(-M, axis=-1, kind="stable")[..., :k]


def _scores_from_weights(W: np.ndarray, R: np.ndarray) -> np.ndarray:
    """(n × C) weighted question means W @ R.T, rounded to 1e-12 so float noise cannot split exact ties."""
    return np.round(W @ R.T, 12)


def _check(R: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    R = np.asarray(R, dtype=float)
    if R.ndim != 2 or R.shape[0] == 0 or R.shape[1] == 0:
        raise ValueError(f"R must be a non-empty (configs × questions) matrix, got shape {R.shape}")
    if k < 1:
        raise ValueError("k must be ≥ 1")
    return R, min(int(k), R.shape[0])


def topk_stability(R: np.ndarray, k: int, n_boot: int = 200, seed: int = 0) -> float:
    """Mean share of the bootstrap top k that lies in grid's top k, over ``n_boot`` resamples of the questions.

    Grid's top k = the k rows of ``R`` (configs × questions, finite) with the highest mean over all questions;
    each bootstrap draws Q question columns with replacement, recomputes every row's mean and its top k (ties
    broken by configuration index, scores rounded to 1e-12). 1.0 = the top k never changes; near k/C = noise.
    Deterministic for a ``seed``; vectorized (one (n_boot × Q) @ (Q × C) product).
    """
    R, k = _check(R, k)
    Q = R.shape[1]
    orig = _topk_rows(_scores_from_weights(np.full((1, Q), 1.0 / Q), R), k)[0]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, Q, size=(n_boot, Q))
    W = np.zeros((n_boot, Q))
    np.add.at(W, (np.repeat(np.arange(n_boot), Q), idx.ravel()), 1.0 / Q)
    top = _topk_rows(_scores_from_weights(W, R), k)
    member = np.zeros(R.shape[0], dtype=bool)
    member[orig] = True
    return float(member[top].mean())


def split_half_agreement(R: np.ndarray, k: int, n_splits: int = 200, seed: int = 0) -> float:
    """Mean share of top k common to the rankings of two random, disjoint, equal halves of the questions.

    Each split permutes the Q questions and takes the first ⌊Q/2⌋ and the next ⌊Q/2⌋ (one question is left
    out when Q is odd); each half ranks the configurations by its mean (ties by index). NaN when Q < 2.
    """
    R, k = _check(R, k)
    C, Q = R.shape
    h = Q // 2
    if h == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    perm = np.argsort(rng.random((n_splits, Q)), axis=1)
    rows = np.arange(n_splits)[:, None]
    WA = np.zeros((n_splits, Q))
    WB = np.zeros((n_splits, Q))
    WA[rows, perm[:, :h]] = 1.0 / h
    WB[rows, perm[:, h:2 * h]] = 1.0 / h
    topA = _topk_rows(_scores_from_weights(WA, R), k)
    topB = _topk_rows(_scores_from_weights(WB, R), k)
    inA = np.zeros((n_splits, C), dtype=bool)
    inA[rows, topA] = True
    return float(inA[rows, topB].mean())


def normalized_regret(scores: Sequence[float] | np.ndarray, chosen: int) -> float:
    """(max − scores[chosen]) / (max − median): 0 = the truly best configuration, 1 = a median one.

    Returns 0.0 when max − median ≤ 1e-12 (nothing to lose). Can exceed 1 for a below-median choice.
    """
    s = np.asarray(scores, dtype=float).ravel()
    top, mid = float(s.max()), float(np.median(s))
    if top - mid <= 1e-12:
        return 0.0
    return (top - float(s[int(chosen)])) / (top - mid)
