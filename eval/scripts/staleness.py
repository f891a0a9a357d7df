"""What a stale view of the shared log costs in tuning quality (issue 15: replicas deciding from local state).

The replay loop's ``stale=K`` credits each decision's rewards K decisions late (the decisions themselves count
as pending at once): the policy decides as a replica does whose state lags the shared log by up to K
decisions (K x batch reports). Measured on the recorded LLM grid table with the held-out protocol of the
README's benchmark (tune on half the questions, judge ``best(1)`` by grid on the other half, a new split per
seed), at 20 % of grid's calls; the difference to K = 0 is paired by seed.

    .venv/bin/python eval/scripts/staleness.py --seeds 30 --out eval/results/service/staleness.md
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from autorag_hp.evaluation.replay import ReplayTable, holdout_split, replay
from autorag_hp.evaluation.rewards import PaperReward
from autorag_hp.evaluation.stats import fmt_ci, paired_difference, t_interval

TABLE = "eval/results/grid_python_docs.jsonl.gz"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--stale", default="0,2,8,32", help="lags in decisions (batch B = 4 reports each)")
    ap.add_argument("--policies", default="hier_ucb,additive_lucb,thompson")
    ap.add_argument("--w", default="0.5,0.9")
    ap.add_argument("--fraction", type=float, default=0.2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    lags = [int(x) for x in args.stale.split(",")]
    table = ReplayTable.load(TABLE)
    threshold = float(np.median(table.metric("token_f1")))
    t0 = time.perf_counter()
    rows = []
    for w in [float(x) for x in args.w.split(",")]:
        R = table.reward_matrix(PaperReward(w=w, metric="token_f1", threshold=threshold, t_max=1000))
        for pol in args.policies.split(","):
            regret = {k: [] for k in lags}
            for s in range(args.seeds):
                tune, held = holdout_split(R.shape[1], 0.5, s)
                for k in lags:
                    res = replay(R[:, tune], table.space, pol, batch=4, seed=s, fractions=[args.fraction],
                                 truth=R[:, held].mean(axis=1), stale=k)
                    regret[k].append(float(res["regret"][0]))
            base = np.array(regret[0])
            for k in lags:
                x = np.array(regret[k])
                cell = fmt_ci(*t_interval(x))
                diff = "—" if k == 0 else str(paired_difference(x, base, lower_is_better=True))
                rows.append(f"| w={w:g} | {pol} | {k} ({4 * k} reports) | {cell} | {diff} |")
    seconds = time.perf_counter() - t0
    cmd = "    .venv/bin/python eval/scripts/staleness.py " + " ".join(
        f"--{k} {v}" for k, v in vars(args).items() if v is not None)
    md = "\n".join([
        "# The cost of a stale view of the shared log",
        "",
        __doc__.split("\n\n")[1].replace("\n", " "),
        "",
        f"Table `{TABLE}`, reward `w·acc − (1−w)·tokens/1000` with token_f1 ≥ {threshold:.4g} as correct; "
        f"{args.seeds} seeds; normalized held-out regret of `best(1)` (0 = best, 1 = median) at "
        f"{args.fraction:.0%} of grid's calls. Difference = stale − exact, paired by seed, mean [95 % t], "
        "with wins/ties/losses of the stale run (lower regret wins).",
        "",
        "| setting | policy | stale decisions | regret | stale − exact |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Command ({seconds:.0f} s on {_cpu_name()}, Python {platform.python_version()}):",
        "",
        cmd,
        "",
    ])
    print(md)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(md)


if __name__ == "__main__":
    main()
