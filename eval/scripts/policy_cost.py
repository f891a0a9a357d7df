"""Cost of a decision (select + observe_decision + B reports) and of building a policy, by space size.

Spaces of 1,000 (10 × 10 × 10), 4,000 (10 × 10 × 8 × 5) and 20,000 (10 × 10 × 10 × 20) configurations; rewards
from a synthetic table (additive effects sd 0.5, interactions 0.05, noise 0.3); B = 4 reports per decision with
their questions, as the replay makes them. Per policy and size: the build time (median of 3), and the time of a
decision over decisions ``[n/2, n)`` of a run of ``n`` (``--decisions``), single-threaded BLAS. Only the
policy's own calls are timed (the caller's ``Decision`` records and ``space.index`` are made between the timed
parts); wall time and the thread's CPU time (which excludes time this shared machine gave others) both.

``--baseline REV`` also measures ``additive_lucb2`` as committed at ``REV`` (its two modules loaded from git
under the name ``additive_lucb2@REV``), in the same process and interleaved with the current one, so the
before/after ratio shares the machine's load.

    python eval/scripts/policy_cost.py --decisions 10000 --baseline da9ed17 --out eval/results/policies_v2/cost.md
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import types

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

SPACES = {1000: [10, 10, 10], 4000: [10, 10, 8, 5], 20000: [10, 10, 10, 20]}


def load_baseline(rev: str) -> str:
    """Register additive_lucb2 as committed at ``rev`` under the name ``additive_lucb2@rev``; return the name."""
    from autorag_hp.policies import register

    def module(path: str, name: str, replace: dict[str, str]) -> types.ModuleType:
        src = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True, check=True).stdout
        for a, b in replace.items():
            src = src.replace(a, b)
        mod = types.ModuleType(name)
        sys.modules[name] = mod
        exec(compile(src, f"{rev}:{path}", "exec"), mod.__dict__)
        return mod

    tag = rev.replace("/", "_").replace("-", "_")
    model = module("autorag_hp/policies/additive_model.py", f"_baseline_model_{tag}", {})
    pol = module("autorag_hp/policies/additive_lucb2.py", f"_baseline_policy_{tag}",
                 {"from autorag_hp.policies.additive_model import": f"from {model.__name__} import"})
    cls = type("BaselineAdditiveLUCB2", (pol.AdditiveLUCB2Policy,), {"name": f"additive_lucb2@{rev}"})
    register(cls)
    return cls.name


def measure(name: str, size: int, decisions: int, batch: int = 4) -> dict[str, float]:
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
    wall, cpu_t = np.zeros(decisions), np.zeros(decisions)
    q = 0
    for t in range(decisions):
        t0, c0 = time.perf_counter(), time.thread_time()
        sel = pol.select()
        t1, c1 = time.perf_counter(), time.thread_time()
        d = Decision(number=pol.t, slot=0, batch=batch, policy=sel.info)
        asks = [d.asking((q + j) % 100) for j in range(batch)]
        q += batch
        i = space.index(sel.config)
        rewards = (table.means[i] + 0.3 * rng.standard_normal(batch)).tolist()
        t2, c2 = time.perf_counter(), time.thread_time()
        pol.observe_decision(sel.config, d)
        for r, a in zip(rewards, asks):
            pol.update(sel.config, r, 1.0 / batch, a)
        t3, c3 = time.perf_counter(), time.thread_time()
        wall[t], cpu_t[t] = (t1 - t0) + (t3 - t2), (c1 - c0) + (c3 - c2)
    late, late_cpu = wall[decisions // 2:], cpu_t[decisions // 2:]
    return {"build": float(np.median(builds)), "mean": float(late.mean()), "median": float(np.median(late)),
            "p99": float(np.quantile(late, 0.99)), "max": float(late.max()), "cpu": float(late_cpu.mean())}


def main() -> None:
    from policies_v2 import cpu
    from threadpoolctl import threadpool_limits

    ap = argparse.ArgumentParser()
    ap.add_argument("--decisions", type=int, default=2000)
    ap.add_argument("--policies", default="hier_ucb,additive_lucb2")
    ap.add_argument("--sizes", default=",".join(map(str, SPACES)))
    ap.add_argument("--baseline", default=None, help="a git revision whose additive_lucb2 is measured beside")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    threadpool_limits(1)
    names = args.policies.split(",")
    if args.baseline:
        names.insert(names.index("additive_lucb2") if "additive_lucb2" in names else len(names),
                     load_baseline(args.baseline))
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "autorag_hp/policies"], capture_output=True,
                           text=True).stdout.strip()
    lines = ["# Cost by space size", "",
             f"A decision = select + observe_decision + 4 reports (the policy's calls only); mean, median, 99th "
             f"percentile and maximum over decisions {args.decisions // 2}..{args.decisions} of one run; build = "
             f"constructing the policy (median of 3). Code: HEAD {head}{' with uncommitted policy changes' if dirty else ''}"
             f". CPU: {cpu()}; load average at start {os.getloadavg()[0]:.1f} on this shared machine.", "",
             "CPU = the thread's CPU time (excludes time the shared machine ran others).", "",
             "| configurations | policy | build | decision mean | median | p99 | max | decision CPU mean |",
             "|---|---|---|---|---|---|---|---|"]
    t0 = time.perf_counter()
    for size in map(int, args.sizes.split(",")):
        for name in names:
            r = measure(name, size, args.decisions)
            lines.append(f"| {size:,} | {name} | {r['build'] * 1e3:.1f} ms | {r['mean'] * 1e3:.3f} ms | "
                         f"{r['median'] * 1e3:.3f} ms | {r['p99'] * 1e3:.3f} ms | {r['max'] * 1e3:.1f} ms | "
                         f"{r['cpu'] * 1e3:.3f} ms |")
            print(lines[-1], flush=True)
    lines += ["", f"Command: `flock /tmp/ahp-bench.lock nice -n 19 .venv/bin/python eval/scripts/policy_cost.py "
              f"--decisions {args.decisions} --policies {args.policies} --sizes {args.sizes}"
              f"{' --baseline ' + args.baseline if args.baseline else ''} --out {args.out}` "
              f"({time.perf_counter() - t0:.0f} s)"]
    text = "\n".join(lines) + "\n"
    if args.out:
        open(args.out, "w", encoding="utf-8").write(text)
    print(text)


if __name__ == "__main__":
    main()
