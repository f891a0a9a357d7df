"""Readable output of a replay benchmark: the paper's Table 1 in markdown, and plots with ± std bands.

:func:`write_report` writes into one folder: ``report.md`` (tables), ``results.json`` (every curve: mean
and std over seeds at every checkpoint), ``recall_<setting>.png`` / ``served_<setting>.png``.

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


def difficulty(res: BenchResult, setting: str) -> tuple[str, float]:
    """(label, grid's share of calls to Recall@5 ≥ 0.8) for ``setting``; needs ``grid`` among the methods."""
    if "grid" not in res.methods:
        return "?", float("nan")
    share = res.calls_to("grid", setting)
    if math.isnan(share) or share > 0.30:
        return "hard", share
    return ("easy" if share <= 0.10 else "medium"), share


def _pm(mean: float, std: float, digits: int = 2) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _pct(x: float) -> str:
    return "not reached" if math.isnan(x) else f"{100 * x:.0f} %"


def markdown(res: BenchResult, *, budget: float = 0.2, command: str | None = None, source: str = "",
             seconds: float | None = None) -> str:
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
              f"each); top-k rule: `{info['rule']}` (each method's own recommendation; `@observed` = ranked by "
              "observed mean like `Tuner.best`)."]
    slow = {f"{m}": n for (m, s), d in res.runs.items() if (n := d["served"].shape[0]) != info["seeds"]}
    if slow:
        lines += ["", "Fewer seeds / capped budget: " + ", ".join(
            f"{m}: {n} seeds, budget ≤ {100 * _maxfrac(res, m):.0f} %" for m, n in sorted(slow.items()))]
    if command:
        lines += ["", "Command:", "", "```", command, "```"]
    if seconds is not None:
        lines += ["", f"Replay run time: {seconds:.0f} s on this machine (all methods, settings and seeds)."]
    lines += ["", "Settings: reward `w·acc − (1−w)·tokens/t_max`; difficulty = share of grid's calls that grid on a "
              "question subsample needs for Recall@5 ≥ 0.8 (easy ≤ 10 %, medium ≤ 30 %, hard beyond): "
              + ", ".join(f"{s}: {_pct(labels[s][1])}" for s in S) + "."]
    # Table 1
    lines += ["", f"## Table 1 — Recall@3 / Recall@5 at {100 * budget:.0f} % of grid's calls (mean ± std over seeds)", ""]
    lines += ["| method | " + " | ".join(f"{h} R@3 | R@5" for h in head) + " |",
              "|---|" + "---|---|" * len(S)]
    for m in res.methods:
        cells = []
        for s in S:
            cells += [_pm(*res.at(m, s, "recall@3", budget)), _pm(*res.at(m, s, "recall@5", budget))]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
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
              "(grid's best in the header).", ""]
    lines += ["| method | " + " | ".join(f"{s} served | deployed (best {res.truth[s]['best_score']:.3f})" for s in S)
              + " |", "|---|" + "---|---|" * len(S)]
    for m in res.methods:
        cells = []
        for s in S:
            cells += [_pm(*res.at(m, s, "served", budget), digits=3), _pm(*res.at(m, s, "deployed", budget), digits=3)]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    # budget curve
    top = max(res.fractions)
    marks = [f for f in (0.05, 0.1, 0.2, 0.3, 0.5, 1.0) if f <= top + 1e-9]
    for s in S:
        lines += ["", f"## Recall@5 vs budget — {s} ({labels[s][0]})", ""]
        lines += ["| method | " + " | ".join(f"{100 * f:.0f} %" for f in marks) + " |", "|---|" + "---|" * len(marks)]
        for m in res.methods:
            lines.append(f"| {m} | " + " | ".join(_pm(*res.at(m, s, "recall@5", f)) for f in marks) + " |")
    lines += ["", "## Grid's top 5 per setting", ""]
    for s in S:
        t = res.truth[s]
        tops = "; ".join(f"{sc:+.3f} {json.dumps(c, sort_keys=True)}" for c, sc in zip(t["top5"], t["top5_scores"]))
        lines.append(f"- {s}: {tops}")
    return "\n".join(lines) + "\n"


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
    for s in res.settings:
        for measure, ylabel, fname in (("recall@5", "Recall@5 vs grid's top 5", "recall"),
                                       ("served", "mean reward served so far", "served")):
            fig, axes = plt.subplots(1, 2 if measure == "recall@5" else 1, figsize=(11 if measure == "recall@5" else 6, 4),
                                     squeeze=False)
            ms = (measure, "recall@3") if measure == "recall@5" else (measure,)
            for ax, meas in zip(axes[0], ms):
                for m in res.methods:
                    a = res.runs[(m, s)][meas]
                    with warnings.catch_warnings():  # a capped method's columns are all NaN past its budget
                        warnings.simplefilter("ignore", RuntimeWarning)
                        mean, std = np.nanmean(a, axis=0), np.nanstd(a, axis=0)
                    line, = ax.plot(x, mean, label=m, lw=1.6 if m.startswith("additive") else 1.0)
                    ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.12, lw=0)
                ax.axvline(0.2 * res.grid_calls, color="grey", ls=":", lw=0.8)
                ax.set_xlabel(f"LLM calls (grid search = {res.grid_calls:,})")
                ax.set_ylabel(ylabel if meas == measure else "Recall@3 vs grid's top 3")
                ax.set_title(f"{s}: {meas}")
                ax.grid(alpha=0.3)
            axes[0][-1].legend(fontsize=7, loc="best")
            fig.tight_layout()
            p = out / f"{fname}_{s.replace('=', '')}.png"
            fig.savefig(p, dpi=110)
            plt.close(fig)
            paths.append(p)
    return paths


def write_report(res: BenchResult, out: str | Path, *, command: str | None = None, source: str = "",
                 seconds: float | None = None, budget: float = 0.2, make_plots: bool = True) -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = markdown(res, budget=budget, command=command, source=source, seconds=seconds)
    (out / "report.md").write_text(md, encoding="utf-8")
    data = res.to_json()
    data.update({"command": command, "source": source, "seconds": seconds})
    (out / "results.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    files = [out / "report.md", out / "results.json"]
    if make_plots:
        files += plots(res, out)
    return {"files": [str(f) for f in files], "markdown": md}
