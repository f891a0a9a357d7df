"""Planted optimum: does what ``best(1)`` deploys come close to the truly best configuration?

4,000 configurations (10 × 10 × 8 × 5 values), true reward additive in per-value effects ~ N(0, effect²) (``SyntheticTable.make`` without a token cost),
observed reward = true + N(0, 0.1²) noise, 1,500 pulls per run, policies driven directly (the calls a Tuner
makes). Gap = true best − true reward of the configuration ranked first under each rule; a hit is a gap
under 0.03. The conformance test in tests/test_policies.py pins the "policy" column.

    .venv/bin/python eval/scripts/planted_optimum.py --seeds 10 --out eval/results/planted_optimum.md
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from autorag_hp.evaluation.replay import SyntheticTable
from autorag_hp.policies import make_policy
from autorag_hp.ranking import RULES, top_indices
from autorag_hp.space import SearchSpace

SPACE = SearchSpace({"a": list(range(10)), "b": list(range(10)), "c": list(range(8)), "d": list(range(5))})


def run(name: str, seed: int, pulls: int = 1500, noise: float = 0.1, effect: float = 0.1) -> dict[str, tuple[float, int]]:
    table = SyntheticTable.make(SPACE, seed=seed, noise=noise, interaction=0.0, effect=effect, tokens_effect=None)
    truth = table.means
    pol = table.drive(make_policy(name, SPACE, seed=seed), pulls, seed)
    stats = pol.sample_stats()
    out = {}
    for rule in RULES:
        top = int(top_indices(SPACE, stats, 1, rule, pol)[0])
        out[rule] = (float(truth.max() - truth[top]), int(stats.n[top]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--policies", default="random,ucb,thompson,epsilon_greedy,hier_ucb,hier_ts,additive_lucb")
    ap.add_argument("--effect", type=float, default=0.1, help="sd of the per-value effects")
    ap.add_argument("--noise", type=float, default=0.1, help="sd of the observation noise")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    lines = ["# Planted optimum: the gap of what `best(1)` deploys", "",
             f"4,000 configurations, additive true reward (per-value effects sd {args.effect:g}), noise sd "
             f"{args.noise:g}, 1,500 pulls, "
             f"{args.seeds} seeds. Cell: mean gap to the true best over seeds, hits (gap < 0.03) / seeds, and the "
             "median number of samples of the pick. `policy` is the default (`Tuner.best`).", "",
             "| policy | " + " | ".join(RULES) + " |", "|---|" + "---|" * len(RULES)]
    for name in args.policies.split(","):
        runs = [run(name, s, noise=args.noise, effect=args.effect) for s in range(args.seeds)]
        cells = []
        for rule in RULES:
            gaps = np.array([r[rule][0] for r in runs])
            ns = [r[rule][1] for r in runs]
            cells.append(f"{gaps.mean():.3f}, {int((gaps < 0.03).sum())}/{len(gaps)} (n={int(np.median(ns))})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    lines += ["", f"Command: `.venv/bin/python eval/scripts/planted_optimum.py --seeds {args.seeds} --effect "
              f"{args.effect:g} --noise {args.noise:g}` "
              f"({time.perf_counter() - t0:.0f} s on {platform.processor() or platform.machine()})."]
    text = "\n".join(lines) + "\n"
    if args.out:
        open(args.out, "w", encoding="utf-8").write(text)
    print(text)


if __name__ == "__main__":
    main()
