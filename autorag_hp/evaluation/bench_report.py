"""Readable output of a replay benchmark: the paper's Table 1 in markdown, and plots with 95 % t-interval bands.

:func:`write_report` writes into one folder: ``report.md`` (tables), ``results.json`` (every curve: mean
and std over seeds at every checkpoint), ``recall_<setting>.png`` / ``served_<setting>.png`` and, when the
runs carry held-out regret, ``regret_<setting>.png``.

How sure a result is comes from :mod:`autorag_hp.evaluation.stats`: every cell is a mean with its 95 %
Student t interval over seeds (digits as many as the interval supports), and methods are compared by the
*paired* difference over seeds (seed s replays the same question stream for every method), resolved only
when its interval excludes 0 — not by "within one std".

Difficulty of a setting is measured, not assumed: it is the share of grid's calls that grid search on a
question subsample needs to reach Recall@5 ≥ 0.8 (mean over seeds) — how hard it is to separate the top 5
from the rest given the per-question noise: **easy** ≤ 10 %, **medium** ≤ 30 %, **hard** beyond.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from autorag_hp.evaluation.replay import BenchResult
from autorag_hp.evaluation.stats import PairedDiff, fmt_ci, fmt_pm, paired_difference, t_columns, t_interval

REFERENCE = "hier_ucb"  # the method every other one is compared with, when present


def difficulty(res: BenchResult, setting: str) -> tuple[str, float]:
    """(label, grid's share of calls to Recall@5 ≥ 0.8) for ``setting``; needs ``grid`` among the methods."""
    if "grid" not in res.methods:
        return "?", float("nan")
    share = res.calls_to("grid", setting)
    if math.isnan(share) or share > 0.30:
        return "hard", share
    return ("easy" if share <= 0.10 else "medium"), share


def _col(res: BenchResult, method: str, setting: str, measure: str, fraction: float) -> np.ndarray:
    """Per-seed values of ``measure`` at the checkpoint nearest to ``fraction`` (row i = the i-th seed)."""
    j = int(np.argmin(np.abs(np.asarray(res.fractions) - fraction)))
    return np.asarray(res.runs[(method, setting)][measure][:, j], dtype=float)


def _ci(res: BenchResult, method: str, setting: str, measure: str, fraction: float) -> str:
    """Cell: mean [95 % t interval] over seeds."""
    return fmt_ci(*t_interval(_col(res, method, setting, measure, fraction)))


def _mean(res: BenchResult, method: str, setting: str, measure: str, fraction: float) -> float:
    a = _col(res, method, setting, measure, fraction)
    return float(np.nanmean(a)) if (~np.isnan(a)).any() else float("nan")


def _paired(res: BenchResult, m: str, ref: str, setting: str, measure: str, fraction: float) -> PairedDiff:
    """m − ref paired by seed (a method with fewer seeds ran the first ones, so rows line up)."""
    a, b = _col(res, m, setting, measure, fraction), _col(res, ref, setting, measure, fraction)
    n = min(a.size, b.size)
    return paired_difference(a[:n], b[:n], lower_is_better=measure == "regret")


def _diff_cell(d: PairedDiff, ref: str | None = None) -> str:
    if d.n == 0 or math.isnan(d.mean):
        return "–"
    txt = str(d) + (f" vs {ref}" if ref else "")
    return f"**{txt}** ✓" if d.resolved else txt


def _measures(res: BenchResult) -> set[str]:
    return set().union(*(d.keys() for d in res.runs.values())) if res.runs else set()


def _pct(x: float) -> str:
    return "not reached" if math.isnan(x) else f"{100 * x:.0f} %"


def markdown(res: BenchResult, *, budget: float = 0.2, command: str | None = None, source: str = "",
             seconds: float | None = None, cpu: str | None = None) -> str:
    """``cpu``: the machine the replay ran on, in words (``cpu_kinds.describe_cpu``), named beside its run time."""
    S = res.settings
    labels = {s: difficulty(res, s) for s in S}
    head = [f"{s} ({labels[s][0]})" for s in S]
    info = res.info
    lines = ["# Replay benchmark: tuning policies against grid search", ""]
    if source:
        lines += [f"Table: {source} — {info['n_configs']} configurations × {info['n_questions']} questions "
                  f"(grid search = {res.grid_calls:,} LLM calls)."]
    if info.get("note"):
        lines += ["", f"**{info['note']}**"]
    lines += ["", f"Batch B = {info['batch']} questions per decision; {info['seeds']} seeds (a new question order "
              f"each); what a method deploys: `best(1)` under the ranking rule `{info['rule']}` (`policy` = the policy's own "
              "recommendation, exactly what `Tuner.best` returns; `NAME@mean` = the same run ranked by raw observed "
              "mean, the rule before the ranking module)."]
    slow = {f"{m}": n for (m, s), d in res.runs.items() if (n := d["served"].shape[0]) != info["seeds"]}
    if slow:
        lines += ["", "Fewer seeds / capped budget: " + ", ".join(
            f"{m}: {n} seeds, budget ≤ {100 * _maxfrac(res, m):.0f} %" for m, n in sorted(slow.items()))]
    if command:
        lines += ["", "Command:", "", "```", command, "```"]
    if seconds is not None:
        lines += ["", f"Replay run time: {seconds:.0f} s on {cpu or 'this machine'} (all methods, settings and seeds)."]
    lines += ["", "Settings: reward `w·acc − (1−w)·tokens/t_max`; difficulty = share of grid's calls that grid on a "
              "question subsample needs for Recall@5 ≥ 0.8 (easy ≤ 10 %, medium ≤ 30 %, hard beyond): "
              + ", ".join(f"{s}: {_pct(labels[s][1])}" for s in S) + "."]
    lines += ["", "Every cell is the mean over seeds with its 95 % Student t interval `[lower, upper]`, shown to "
              "the digits the interval supports. Floating-point differences between machines (BLAS, CPU kind) move "
              "the adaptive methods' choices, so a re-run on another machine lands inside the intervals, not on the "
              "digits."]
    measures = _measures(res)
    has_regret = "regret" in measures
    # headline: held-out regret of what best(1) deploys
    if has_regret:
        hold = info.get("holdout")
        where = (f"grid's ranking on the {100 * hold:.0f} % of questions held out from tuning (a new split per seed)"
                 if hold else "grid's ranking on all questions")
        lines += ["", f"## Held-out regret of the deployed configuration (best(1)) at {100 * budget:.0f} % of "
                  "grid's calls", "",
                  "Normalized regret `(max − score) / (max − median)` of the configuration each method's `best(1)` "
                  f"would deploy, scored by {where}: 0 = the truly best configuration, 1 = a median one; lower is "
                  "better. Mean [95 % t interval] over seeds.", ""]
        lines += ["| method | " + " | ".join(head) + " |", "|---|" + "---|" * len(S)]
        for m in res.methods:
            lines.append(f"| {m} | " + " | ".join(_ci(res, m, s, "regret", budget) for s in S) + " |")
    # Table 1
    lines += ["", f"## Table 1 — Recall@3 / Recall@5 at {100 * budget:.0f} % of grid's calls "
              "(mean [95 % t interval] over seeds)", ""]
    lines += ["| method | " + " | ".join(f"{h} R@3 | R@5" for h in head) + " |",
              "|---|" + "---|---|" * len(S)]
    for m in res.methods:
        cells = []
        for s in S:
            cells += [_ci(res, m, s, "recall@3", budget), _ci(res, m, s, "recall@5", budget)]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    # paired differences
    meas = "regret" if has_regret else "recall@5"
    better = "lower" if meas == "regret" else "higher"
    lines += ["", f"## Paired differences at {100 * budget:.0f} % of grid's calls ({meas})", "",
              f"Each cell is the row's {meas} minus the reference's, paired by seed (seed s replays the same question "
              "stream for every method): mean [95 % t interval] of the per-seed differences, then wins/ties/losses "
              f"of the row over the seeds ({better} {meas} is better"
              + (", so a negative difference favours the row" if meas == "regret" else "") + "). A difference is "
              "**resolved** (bold, ✓) only when its interval excludes 0; otherwise the data cannot tell the two "
              "methods apart. \"best other\" = the other method with the best mean in that setting.", ""]
    cols = ([f"{s} vs {REFERENCE}" for s in S] if REFERENCE in res.methods else []) + [f"{s} vs best other" for s in S]
    lines += ["| method | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    sign = -1.0 if meas == "regret" else 1.0
    for m in res.methods:
        cells = []
        if REFERENCE in res.methods:
            cells += ["—" if m == REFERENCE else _diff_cell(_paired(res, m, REFERENCE, s, meas, budget)) for s in S]
        for s in S:
            others = [o for o in res.methods if o != m and not math.isnan(_mean(res, o, s, meas, budget))]
            if not others:
                cells.append("–")
                continue
            ref = max(others, key=lambda o: sign * _mean(res, o, s, meas, budget))
            cells.append(_diff_cell(_paired(res, m, ref, s, meas, budget), ref))
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    # noise ceiling
    ceil = {s: res.truth.get(s, {}).get("ceiling") for s in S}
    if any(ceil.values()):
        lines += ["", "## Noise ceiling", "",
                  "Grid's own ranking is an estimate from a finite set of questions: `bootstrap@k` = mean share of "
                  "grid's top k that a bootstrap resample of the questions keeps in its top k, `halves@k` = mean "
                  "share of top k common to two random halves of the questions. No method can be judged more finely "
                  "than grid's own top-k stability under a bootstrap of the questions.", ""]
        for s in S:
            if ceil[s]:
                lines.append(f"- {s}: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, (int, float)) else f"{k} {v}"
                                                    for k, v in ceil[s].items()))
    # calls to 0.8
    lines += ["", "## LLM calls to reach Recall@5 ≥ 0.8 (mean over seeds), as a share of grid's calls", ""]
    lines += ["| method | " + " | ".join(head) + " |", "|---|" + "---|" * len(S)]
    for m in res.methods:
        cells = []
        for s in S:
            x = res.calls_to(m, s)
            cells.append("not reached" if math.isnan(x) else f"{int(round(x * res.grid_calls)):,} ({100 * x:.0f} %)")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    # served and deployed
    lines += ["", f"## Online cost and outcome at {100 * budget:.0f} % of grid's calls",
              "", "Served = mean reward users got during tuning; deployed = grid score of the method's top-1 "
              "(grid's best in the header); mean [95 % t interval] over seeds.", ""]
    lines += ["| method | " + " | ".join(f"{s} served | deployed (best {res.truth[s]['best_score']:.3f})" for s in S)
              + " |", "|---|" + "---|---|" * len(S)]
    for m in res.methods:
        cells = []
        for s in S:
            cells += [_ci(res, m, s, "served", budget), _ci(res, m, s, "deployed", budget)]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    # budget curve
    top = max(res.fractions)
    marks = [f for f in (0.05, 0.1, 0.2, 0.3, 0.5, 1.0) if f <= top + 1e-9]
    for s in S:
        lines += ["", f"## Recall@5 vs budget — {s} ({labels[s][0]}); mean ± 95 % t half-width", ""]
        lines += ["| method | " + " | ".join(f"{100 * f:.0f} %" for f in marks) + " |", "|---|" + "---|" * len(marks)]
        for m in res.methods:
            lines.append(f"| {m} | " + " | ".join(_pm_t(res, m, s, "recall@5", f) for f in marks) + " |")
    lines += ["", "## Grid's top 5 per setting", ""]
    for s in S:
        t = res.truth[s]
        tops = "; ".join(f"{sc:+.3f} {json.dumps(c, sort_keys=True)}" for c, sc in zip(t["top5"], t["top5_scores"]))
        lines.append(f"- {s}: {tops}")
    return "\n".join(lines) + "\n"


def _pm_t(res: BenchResult, m: str, s: str, measure: str, fraction: float) -> str:
    mean, lo, hi = t_interval(_col(res, m, s, measure, fraction))
    return fmt_pm(mean, (hi - lo) / 2.0)


def _maxfrac(res: BenchResult, method: str) -> float:
    for (m, _), d in res.runs.items():
        if m == method:
            ok = ~np.isnan(d["served"].mean(axis=0))
            return float(np.asarray(res.fractions)[ok].max()) if ok.any() else 0.0
    return 1.0


def plots(res: BenchResult, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.asarray(res.fractions) * res.grid_calls
    paths = []
    kinds = [("recall@5", "Recall@5 vs grid's top 5", "recall"), ("served", "mean reward served so far", "served")]
    if "regret" in _measures(res):
        kinds.append(("regret", "held-out normalized regret of best(1)", "regret"))
    for s in res.settings:
        for measure, ylabel, fname in kinds:
            fig, axes = plt.subplots(1, 2 if measure == "recall@5" else 1, figsize=(11 if measure == "recall@5" else 6, 4),
                                     squeeze=False)
            ms = (measure, "recall@3") if measure == "recall@5" else (measure,)
            for ax, meas in zip(axes[0], ms):
                for m in res.methods:
                    a = res.runs[(m, s)][meas]
                    with warnings.catch_warnings():  # a capped method's columns are all NaN past its budget
                        warnings.simplefilter("ignore", RuntimeWarning)
                        mean, half = t_columns(a)  # 95 % t interval of the mean over seeds
                    half = np.nan_to_num(half, nan=0.0)
                    line, = ax.plot(x, mean, label=m, lw=1.6 if m.startswith("additive") else 1.0)
                    ax.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.12, lw=0)
                ax.axvline(0.2 * res.grid_calls, color="grey", ls=":", lw=0.8)
                ax.set_xlabel(f"LLM calls (grid search = {res.grid_calls:,})")
                ax.set_ylabel(ylabel if meas == measure else "Recall@3 vs grid's top 3")
                ax.set_title(f"{s}: {meas} (95 % t band over seeds)")
                ax.grid(alpha=0.3)
            axes[0][-1].legend(fontsize=7, loc="best")
            fig.tight_layout()
            p = out / f"{fname}_{s.replace('=', '')}.png"
            fig.savefig(p, dpi=110)
            plt.close(fig)
            paths.append(p)
    return paths


def write_report(res: BenchResult, out: str | Path, *, command: str | None = None, source: str = "",
                 seconds: float | None = None, budget: float = 0.2, make_plots: bool = True,
                 cpu: str | None = None) -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = markdown(res, budget=budget, command=command, source=source, seconds=seconds, cpu=cpu)
    (out / "report.md").write_text(md, encoding="utf-8")
    data = res.to_json()
    data.update({"command": command, "source": source, "seconds": seconds, "cpu": cpu})
    (out / "results.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    files = [out / "report.md", out / "results.json"]
    if make_plots:
        files += plots(res, out)
    return {"files": [str(f) for f in files], "markdown": md}
