"""Statistics that say how sure a benchmark result is, and the report that uses them."""

import math

import numpy as np
import pytest

from autorag_hp.evaluation.bench_report import markdown
from autorag_hp.evaluation.replay import BenchResult
from autorag_hp.evaluation.stats import (
    PairedDiff,
    digits_for,
    fmt_ci,
    fmt_pm,
    normalized_regret,
    paired_difference,
    split_half_agreement,
    t_columns,
    t_interval,
    topk_stability,
)

T975_DF2 = 4.302652729749462  # scipy.stats.t.ppf(0.975, 2)
T975_DF3 = 3.1824463052837078  # scipy.stats.t.ppf(0.975, 3)


def test_t_interval_by_hand():
    # [1, 2, 3]: mean 2, s = 1, half = t(0.975, 2) * 1 / sqrt(3)
    mean, lo, hi = t_interval([1.0, 2.0, 3.0, float("nan")])
    half = T975_DF2 / math.sqrt(3)
    assert mean == 2.0 and lo == pytest.approx(2 - half, abs=1e-12) and hi == pytest.approx(2 + half, abs=1e-12)
    m1, l1, h1 = t_interval([0.7])
    assert m1 == 0.7 and math.isnan(l1) and math.isnan(h1)
    assert all(math.isnan(v) for v in t_interval([]))
    mean, half = t_columns(np.array([[1.0, 5.0], [2.0, np.nan], [3.0, np.nan]]))
    assert mean[0] == 2.0 and half[0] == pytest.approx(T975_DF2 / math.sqrt(3)) and mean[1] == 5.0
    assert math.isnan(half[1])


def test_paired_difference_by_hand():
    a = [0.5, 0.7, 0.6, 0.8, 0.6, np.nan]
    b = [0.4, 0.5, 0.6, 0.6, 0.4, 0.2]  # the NaN pair is dropped
    # d = [0.1, 0.2, 0.0, 0.2, 0.2]: mean 0.14, s^2 = (0.0016 + 3 * 0.0036 + 0.0196) / 4 = 0.008
    d = paired_difference(a, b)
    half = 2.7764451051977934 * math.sqrt(0.008 / 5)  # t.ppf(0.975, 4) * s / sqrt(n) = 0.111
    assert d.n == 5 and (d.wins, d.ties, d.losses) == (4, 1, 0)
    assert d.mean == pytest.approx(0.14) and d.lower == pytest.approx(0.14 - half)
    assert d.upper == pytest.approx(0.14 + half) and d.resolved
    assert str(d) == "+0.1 [+0.0, +0.3] 4/1/0"  # half 0.111: its first significant digit is the 1st decimal
    low = paired_difference(a, b, lower_is_better=True)
    assert (low.wins, low.ties, low.losses) == (0, 1, 4) and low.mean == d.mean
    # an unresolved one: d = [+1, -1, +1, -1]
    u = paired_difference([1, 0, 1, 0], [0, 1, 0, 1])
    assert u.mean == 0.0 and not u.resolved and (u.wins, u.ties, u.losses) == (2, 0, 2)
    assert u.upper == pytest.approx(T975_DF3 * 2 / math.sqrt(3) / 2)  # s = 2/sqrt(3), n = 4
    with pytest.raises(ValueError):
        paired_difference([1, 2], [1])
    assert str(PairedDiff(0.06, 0.01, 0.11, 20, 14, 3, 3)) == "+0.06 [+0.01, +0.11] 14/3/3"


def test_digits_and_formats():
    table = {0.05: 2, 0.013: 2, 0.004: 3, 0.3: 1, 0.1: 1, 0.01: 2, 2.5: 1, 0.00001: 4, 0.0: 2, float("nan"): 2}
    assert {h: digits_for(h) for h in table} == table
    assert fmt_ci(0.8123, 0.7623, 0.8623) == "0.81 [0.76, 0.86]"
    assert fmt_ci(0.8123, 0.8083, 0.8163) == "0.812 [0.808, 0.816]"
    assert fmt_ci(0.8, float("nan"), float("nan")) == "0.80" and fmt_ci(float("nan"), 0, 1) == "–"
    assert fmt_pm(0.8123, 0.05) == "0.81 ± 0.05" and fmt_pm(0.8123, 0.3) == "0.8 ± 0.3"


def test_topk_stability_and_split_halves():
    rng = np.random.default_rng(1)
    C, Q = 60, 40
    far = rng.normal(0, 0.1, (C, Q))
    far[:5] += np.arange(5, 0, -1)[:, None] * 10.0  # the top 5 are far above the rest
    assert topk_stability(far, 5) == 1.0 and split_half_agreement(far, 5) == 1.0
    noise = rng.normal(0, 1, (C, Q))
    st = topk_stability(noise, 5, n_boot=100, seed=3)
    sh = split_half_agreement(noise, 5, n_splits=100, seed=3)
    assert 0 < st < 0.9 and 0 <= sh < 0.5
    assert st == topk_stability(noise, 5, n_boot=100, seed=3)  # deterministic for a seed
    assert sh == split_half_agreement(noise, 5, n_splits=100, seed=3)
    # exact ties are broken by configuration index: identical rows never swap
    tied = np.zeros((10, 8))
    assert topk_stability(tied, 3) == 1.0 and split_half_agreement(tied, 3) == 1.0


def test_normalized_regret():
    s = np.array([0.9, 0.5, 0.4, 0.6, 0.2])  # max 0.9, median 0.5
    assert normalized_regret(s, 0) == 0.0
    assert normalized_regret(s, 1) == pytest.approx(1.0)
    assert normalized_regret(s, 3) == pytest.approx(0.75)
    assert normalized_regret(s, 4) == pytest.approx(1.75)
    assert normalized_regret([0.3, 0.3, 0.3], 1) == 0.0


def _tiny_bench() -> BenchResult:
    rng = np.random.default_rng(0)
    fr = [0.2, 1.0]
    seeds = 5

    def arr(center, spread=0.01):
        return np.clip(center + rng.normal(0, spread, (seeds, len(fr))), 0, 1)

    runs = {
        ("hier_ucb", "w=0.5"): {"recall@3": arr(0.9), "recall@5": arr(0.9), "served": arr(0.5), "deployed": arr(0.6),
                                "regret": arr(0.05)},
        ("random", "w=0.5"): {"recall@3": arr(0.3), "recall@5": arr(0.3), "served": arr(0.3), "deployed": arr(0.4),
                              "regret": arr(0.6)},
    }
    truth = {"w=0.5": {"best_score": 0.62, "top5": [{"k": i} for i in range(5)], "top5_scores": [0.62, 0.6, 0.58, 0.5, 0.4],
                       "mean_score": 0.3, "question_sd": 0.2, "ceiling": {"bootstrap@5": 0.78, "halves@5": 0.62}}}
    info = {"n_configs": 20, "n_questions": 10, "batch": 4, "seeds": seeds, "rule": "own", "note": "", "holdout": 0.3}
    return BenchResult(fractions=fr, grid_calls=200, settings=["w=0.5"], methods=["hier_ucb", "random"], runs=runs,
                       seconds={k: 0.1 for k in runs}, truth=truth, info=info)


def test_report_has_intervals_paired_differences_and_ceiling():
    md = markdown(_tiny_bench(), budget=0.2, source="tiny")
    assert "## Held-out regret of the deployed configuration (best(1))" in md
    assert md.index("Held-out regret") < md.index("## Table 1")
    assert "30 % of questions held out" in md
    assert "## Paired differences at 20 % of grid's calls (regret)" in md
    assert "## Noise ceiling" in md and "bootstrap@5 0.78" in md and "halves@5 0.62" in md
    assert "lands inside the intervals" in md
    diffs = md.split("## Paired differences")[1].split("##")[0]
    row = next(line for line in diffs.splitlines() if line.startswith("| random |"))
    # random's regret is clearly higher than hier_ucb's: resolved (bold, ✓), random loses on every seed
    assert row.count("✓") == 2 and "| **+0.5" in row and "0/0/5" in row
    ref = next(line for line in diffs.splitlines() if line.startswith("| hier_ucb |"))
    assert "| — |" in ref and "**-0.5" in ref and "5/0/0 vs random** ✓" in ref
    assert " ± " not in md.split("## Table 1")[1].split("##")[0]  # Table 1 cells are intervals, not ± std
