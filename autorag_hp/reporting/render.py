"""A study's report: ``report.md`` with PNG plots (``tune --report``, ``show --report``) or a terminal table (``show``).

What it holds, each defined in :mod:`autorag_hp.reporting.study`: the trials by state, the best configurations
with their 95 % intervals, per-parameter arm means with 95 % t intervals (``arms.png``), the reward of every
reported trial with its rolling mean (``reward.png``), and the share of decisions that explored, overall and
over a rolling window (``exploration.png``).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np

from autorag_hp.reporting.study import StudyData, masked

PLOTS = ("arms.png", "reward.png", "exploration.png")


def _fmt_ci(mean: float | None, lower: float | None, upper: float | None) -> str:
    from autorag_hp.evaluation.stats import fmt_ci

    nan = float("nan")
    return fmt_ci(nan if mean is None else mean, nan if lower is None else lower, nan if upper is None else upper)


def _config(cfg) -> str:
    return " ".join(f"{k}={v}" for k, v in cfg.items())


def _when(t: float | None) -> str:
    return "–" if t is None else dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def window(n: int) -> int:
    """The rolling window of the plots: a tenth of the series, between 5 and 50 points."""
    return int(min(50, max(5, n // 10)))


def rolling(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing mean over the last ``w`` points (fewer at the start)."""
    c = np.cumsum(np.insert(np.asarray(x, dtype=float), 0, 0.0))
    i = np.arange(1, len(x) + 1)
    lo = np.maximum(i - w, 0)
    return (c[i] - c[lo]) / (i - lo)


def _rule_text(data: StudyData) -> str:
    if data.rule == "policy":
        return f"ranked by the {data.policy} policy's own recommendation"
    return "ranked by the posterior (shrunk) mean"


def _tables(data: StudyData, md: bool) -> list[str]:
    """The best-configurations and arm-means tables, as markdown or as aligned text."""

    def table(head: list[str], rows: list[list[str]]) -> list[str]:
        if md:
            return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]
        widths = [max(len(x) for x in col) for col in zip(head, *rows)]
        return ["  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip() for r in [head, *rows]]

    out = [("## " if md else "") + f"Best configurations ({_rule_text(data)}; mean [95 % interval])", ""]
    rows = [[str(i), _fmt_ci(e.mean, e.lower, e.upper) + (f" ({e.note})" if e.note else ""), str(e.count),
             _config(e.config)] for i, e in enumerate(data.best, 1)]
    out += table(["#", "mean reward", "n", "configuration"], rows) + [""]
    out += [("## " if md else "") + "Arm means per parameter (reported trials with that value; mean [95 % t interval])",
            ""]
    rows = []
    for name, arms in data.arm_means().items():
        for a in arms:
            rows.append([name, str(a.value), str(a.count), "–" if a.count == 0 else _fmt_ci(a.mean, a.lower, a.upper)])
    out += table(["parameter", "value", "n", "mean reward"], rows) + [""]
    return out


def _header(data: StudyData) -> list[str]:
    c = data.counts()
    times = [t.created_at for t in data.trials]
    decisions = data.decisions()
    share = sum(r.explored for r in decisions) / len(decisions) if decisions else math.nan
    half = len(decisions) // 2
    late = decisions[half:]
    late_share = sum(r.explored for r in late) / len(late) if late else math.nan
    lines = [
        f"study {data.name!r} in {data.source}" + (f", policy {data.policy}" if data.policy else ""),
        f"trials: {len(data.trials)} ({c['reported']} reported, {c['pending']} pending, {c['expired']} expired), "
        f"{len(decisions)} decisions, from {_when(min(times))} to {_when(max(times))}",
        f"exploration share: {share:.0%} of all decisions, {late_share:.0%} of the second half",
        f"space: {', '.join(f'{p}={len(data.space[p])} values' for p in data.space.names)}"
        + (" (inferred from the trials)" if data.space_inferred else ""),
    ]
    rewards = [t.reward for t in data.reported()]
    if rewards:
        lines.append(f"reward: mean {np.mean(rewards):.3f}, min {min(rewards):.3f}, max {max(rewards):.3f}")
    return lines + [f"note: {n}" for n in data.notes]


def terminal(data: StudyData) -> str:
    """What ``autorag-hp show`` prints: the header and both tables as aligned text."""
    return "\n".join([*_header(data), "", *_tables(data, md=False)]).rstrip() + "\n"


def markdown(data: StudyData, plots: list[Path], command: str | None = None) -> str:
    out = [f"# Study {data.name}", ""]
    if command:
        out += ["Made by:", "", "```", command, "```", ""]
    out += [f"- {line}" for line in _header(data)] + [""]
    out += _tables(data, md=True)
    titles = {"arms.png": "Arm means per parameter", "reward.png": "Reward over time",
              "exploration.png": "Exploration share"}
    for p in plots:
        out += [f"## {titles.get(p.name, p.stem)}", "", f"![{p.stem}]({p.name})", ""]
    return "\n".join(out).rstrip() + "\n"


def plots(data: StudyData, out: Path) -> list[Path]:
    """Write ``arms.png``, ``reward.png`` and ``exploration.png`` into ``out``; return their paths."""
    from autorag_hp.deps import require

    matplotlib = require("matplotlib", "the study report's plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    arms = data.arm_means()
    ncols = min(3, len(arms))
    nrows = math.ceil(len(arms) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False)
    for ax, (name, rows) in zip(axes.flat, arms.items()):
        x = np.arange(len(rows))
        mean = np.array([r.mean for r in rows], dtype=float)
        lo = np.array([r.lower for r in rows], dtype=float)
        hi = np.array([r.upper for r in rows], dtype=float)
        err = np.vstack([np.nan_to_num(mean - lo), np.nan_to_num(hi - mean)])
        ax.errorbar(x, mean, yerr=err, fmt="o", capsize=4, color="tab:blue")
        for xi, r in zip(x, rows):
            if r.count:
                ax.annotate(f"n={r.count}", (xi, r.mean), textcoords="offset points", xytext=(6, -3), fontsize=7)
        ax.set_xticks(x, [str(r.value) for r in rows], rotation=30 if len(rows) > 4 else 0, fontsize=8)
        ax.set_xlim(-0.5, len(rows) - 0.5)
        ax.set_title(name)
        ax.set_ylabel("mean reward (95 % t interval)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(arms):]:
        ax.axis("off")
    fig.suptitle(f"{data.name}: mean reward per parameter value")
    fig.tight_layout()
    paths.append(_save(fig, out / "arms.png", plt))

    done = [(i, t) for i, t in enumerate(data.trials, 1) if t.state == "reported"]
    fig, ax = plt.subplots(figsize=(8, 4))
    if done:
        x = np.array([i for i, _ in done])
        y = np.array([t.reward for _, t in done], dtype=float)
        w = window(len(y))
        ax.scatter(x, y, s=8, alpha=0.35, color="tab:blue", label="reward of a trial")
        ax.plot(x, rolling(y, w), color="tab:blue", lw=1.8, label=f"rolling mean ({w} trials)")
        if data.best and data.best[0].mean is not None:
            ax.axhline(data.best[0].mean, color="tab:green", ls="--", lw=1,
                       label=f"best configuration's mean ({data.best[0].mean:.3f})")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel("trial (creation order)")
    ax.set_ylabel("reward")
    ax.set_title(f"{data.name}: reward over time ({len(done)} reported trials)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(_save(fig, out / "reward.png", plt))

    rows = data.decisions()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    if rows:
        e = np.array([r.explored for r in rows], dtype=float)
        w = window(len(e))
        x = np.arange(1, len(e) + 1)
        ax.plot(x, rolling(e, w), color="tab:orange", lw=1.8, label=f"explored, rolling share ({w} decisions)")
        ax.axhline(e.mean(), color="grey", ls=":", lw=1, label=f"overall share ({e.mean():.0%})")
        ax.legend(fontsize=8, loc="best")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("decision")
    ax.set_ylabel("share that explored")
    ax.set_title(f"{data.name}: exploration (a configuration other than the incumbent, or the policy's flag)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(_save(fig, out / "exploration.png", plt))
    return paths


def _save(fig, path: Path, plt) -> Path:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def command_line(args) -> str | None:
    """The command line that made ``args`` (``args.argv``, which :func:`autorag_hp.cli.main` sets), for the
    report's "Made by", with any URL's password masked; None when the command was not run from the CLI."""
    import shlex

    argv = getattr(args, "argv", None)
    if not argv:
        return None
    return " ".join(["autorag-hp", *(shlex.quote(masked(text)) for text in argv)])


def write_report(data: StudyData, out: str | Path, *, command: str | None = None) -> list[Path]:
    """Write ``report.md`` and its PNGs into the folder ``out`` (created if needed); return the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pngs = plots(data, out)
    md = out / "report.md"
    md.write_text(markdown(data, pngs, command), encoding="utf-8")
    return [md, *pngs]
