"""Cost of a decision (select + observe_decision + B reports) and of building a policy, by space size.

Spaces of 1,000 (10 × 10 × 10), 4,000 (10 × 10 × 8 × 5) and 20,000 (10 × 10 × 10 × 20) configurations; rewards
from a synthetic table (additive effects sd 0.5, interactions 0.05, noise 0.3); B = 4 reports per decision with
their questions, as the replay makes them. Per policy and size: the build time (median of 3), and the mean time
of a decision over decisions ``[n/2, n)`` of a run of ``n`` (``--decisions``), single-threaded BLAS.

    python eval/scripts/policy_cost.py --decisions 2000 --out eval/results/policies_v2/cost.md
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

SPACES = {1000: [10, 10, 10], 4000: [10, 10, 8, 5], 20000: [10, 10, 10, 20]}


def measure(name: str, size: int, decisions: int, batch: int = 4) -> tuple[float, float, float, float]:
    from autorag_hp.decision import Decision
    from autorag_hp.evaluation.replay import SyntheticTable
    from autorag_hp.policies import make_policy
    from autorag_hp.space import SearchSpace

    space = SearchSpace({f"p{j}": list(range(n)) for j, n in enumerate(SPACES[size])})
    builds = []
    for _ in range(3):
        t0 = time.perf_counter()
        pol = make_policy(name, space, seed=0)
        builds.append(time.perf_counter() - t0)
    table = SyntheticTable.make(space, seed=0, effect=0.5, interaction=0.05, noise=0.3, tokens_effect=None)
    rng = np.random.default_rng(0)
    times, cpu_times = [], []
    q = 0
    for _ in range(decisions):
        t0, c0 = time.perf_counter(), time.thread_time()
        sel = pol.select()
        d = Decision(number=pol.t, slot=0, batch=batch, policy=sel.info)
        pol.observe_decision(sel.config, d)
        i = space.index(sel.config)
        for _ in range(batch):
            pol.update(sel.config, float(table.means[i] + 0.3 * rng.standard_normal()), 1.0 / batch, d.asking(q % 100))
            q += 1
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.thread_time() - c0)
    late = np.array(times[decisions // 2:])
    return float(np.median(builds)), float(late.mean()), float(np.median(late)), float(np.mean(cpu_times[decisions // 2:]))


def main() -> None:
    from policies_v2 import cpu
    from threadpoolctl import threadpool_limits

    ap = argparse.ArgumentParser()
    ap.add_argument("--decisions", type=int, default=2000)
    ap.add_argument("--policies", default="hier_ucb,additive_lucb,additive_lucb2")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    threadpool_limits(1)
    lines = ["# Cost by space size", "",
             f"A decision = select + observe_decision + 4 reports; mean (median) over decisions {args.decisions // 2}.."
             f"{args.decisions} of one run; build = constructing the policy (median of 3). CPU: {cpu()}; load average "
             f"at start {os.getloadavg()[0]:.1f} on this shared machine.", "",
             "CPU = the thread's CPU time (excludes time the shared machine ran others).", "",
             "| configurations | policy | build | decision mean | decision median | decision CPU mean |",
             "|---|---|---|---|---|---|"]
    for size in SPACES:
        for name in args.policies.split(","):
            b, mean, med, cpu_mean = measure(name, size, args.decisions)
            lines.append(f"| {size:,} | {name} | {b * 1e3:.1f} ms | {mean * 1e3:.3f} ms | {med * 1e3:.3f} ms | "
                         f"{cpu_mean * 1e3:.3f} ms |")
            print(lines[-1], flush=True)
    lines += ["", f"Command: `flock /tmp/ahp-bench.lock nice -n 19 .venv/bin/python eval/scripts/policy_cost.py "
              f"--decisions {args.decisions} --policies {args.policies} --out {args.out}`"]
    text = "\n".join(lines) + "\n"
    if args.out:
        open(args.out, "w", encoding="utf-8").write(text)
    print(text)


if __name__ == "__main__":
    main()
