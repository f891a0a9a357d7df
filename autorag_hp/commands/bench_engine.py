"""``autorag-hp bench-engine``: suggest+report pairs per second against Optuna ask/tell and river's UCB.

All engines run in one process, one after another, on the same 1,000-configuration space (10 x 10 x 10
categorical), each timed over the same number of pairs with a constant-cost reward so that only the
engine's overhead is measured. Ratios are computed within the run (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

SPACE = {"a": list(range(10)), "b": list(range(10)), "c": list(range(10))}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pairs", type=int, default=20_000, help="pairs for our in-memory engines and river")
    p.add_argument("--sqlite-pairs", type=int, default=3_000)
    p.add_argument("--optuna-pairs", type=int, default=2_000, help="pairs for Optuna RandomSampler")
    p.add_argument("--tpe-pairs", type=int, default=300, help="pairs for Optuna TPESampler (it slows as trials grow)")
    p.add_argument("--repeats", type=int, default=3, help="best of N timings per engine")
    p.add_argument("--out", type=Path, default=None, help="write a markdown report here")


def _clock() -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): on a shared machine wall time measures the neighbours too."""
    return time.perf_counter(), time.process_time()


def _rates(n: int, start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _clock()
    return n / (wall - start[0]), n / max(cpu - start[1], 1e-9)


def _reward(a: int, b: int, c: int) -> float:
    return ((a * 7 + b * 3 + c) % 11) / 10.0


def _ours(policy: str, n: int, storage: str | None) -> tuple[float, float]:
    from autorag_hp import Tuner

    tuner = Tuner(SPACE, policy=policy, storage=storage, seed=0)
    start = _clock()
    for _ in range(n):
        trial = tuner.suggest()
        c = trial.config
        tuner.report(trial.id, _reward(c["a"], c["b"], c["c"]))
    rates = _rates(n, start)
    tuner.close()
    return rates


def _optuna(sampler: str, n: int) -> tuple[float, float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.samplers.RandomSampler(seed=0) if sampler == "random" else optuna.samplers.TPESampler(seed=0)
    study = optuna.create_study(direction="maximize", sampler=s)
    dists = {k: optuna.distributions.CategoricalDistribution(v) for k, v in SPACE.items()}
    start = _clock()
    for _ in range(n):
        trial = study.ask(dists)
        p = trial.params
        study.tell(trial, _reward(p["a"], p["b"], p["c"]))
    return _rates(n, start)


def _river(n: int) -> tuple[float, float]:
    from river import bandit

    arms = [(a, b, c) for a in range(10) for b in range(10) for c in range(10)]
    policy = bandit.UCB(delta=1.0, seed=0)
    start = _clock()
    for _ in range(n):
        arm = policy.pull(arms)
        policy.update(arm, _reward(*arm))
    return _rates(n, start)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    tmp = tempfile.mkdtemp(prefix="autorag-bench-")
    jobs = [
        ("autorag-hp ucb, memory", lambda: _ours("ucb", args.pairs, None), args.pairs),
        ("autorag-hp hier_ucb, memory", lambda: _ours("hier_ucb", args.pairs, None), args.pairs),
        ("autorag-hp random, memory", lambda: _ours("random", args.pairs, None), args.pairs),
    ]
    for pol in ("hier_ucb", "ucb"):
        jobs.append((f"autorag-hp {pol}, SQLite (WAL, durable on return)",
                     lambda pol=pol: _ours(pol, args.sqlite_pairs, f"sqlite:///{tmp}/{pol}-{time.time_ns()}.db"),
                     args.sqlite_pairs))
    jobs += [
        ("Optuna ask/tell, RandomSampler, memory", lambda: _optuna("random", args.optuna_pairs), args.optuna_pairs),
        ("Optuna ask/tell, TPESampler, memory", lambda: _optuna("tpe", args.tpe_pairs), args.tpe_pairs),
    ]
    import importlib.util

    if importlib.util.find_spec("river") is not None:  # river is a [dev] extra: compared only where installed
        jobs.append(("river bandit.UCB pull/update", lambda: _river(args.pairs), args.pairs))
    else:
        print("note: river is not installed (pip install 'autorag-hp[dev]'); its row is left out", file=sys.stderr)
    results = {}
    with tqdm(total=len(jobs) * args.repeats, desc="bench-engine", unit="run") as bar:
        for _ in range(args.repeats):  # interleave repeats so drifting machine load hits every engine alike
            for name, fn, _n in jobs:
                wall, cpu = fn()
                old = results.get(name, (0.0, 0.0))
                results[name] = (max(old[0], wall), max(old[1], cpu))
                bar.update()
    base = results["Optuna ask/tell, RandomSampler, memory"][1]
    lines = [
        "# Engine benchmark: suggest+report pairs per second",
        "",
        f"Command: `autorag-hp bench-engine{' --out ' + str(args.out) if args.out else ''}` "
        f"(pairs={args.pairs}, sqlite={args.sqlite_pairs}, optuna random={args.optuna_pairs}, tpe={args.tpe_pairs}, "
        f"best of {args.repeats})",
        "Two rates per engine: pairs per wall-clock second, and pairs per CPU-second of the benchmarking process "
        "(time.process_time, user + system, so SQLite's writes are counted), which other load on a shared machine "
        "distorts less; the targets below are judged on the CPU rate.",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        "1,000-configuration space (10 x 10 x 10 categorical); all engines in one run.",
        "",
        "| engine | pairs/s (wall) | pairs/s (CPU) | vs Optuna RandomSampler (CPU) |",
        "|---|---:|---:|---:|",
    ]
    for name, _fn, _n in jobs:
        wall, cpu = results[name]
        lines.append(f"| {name} | {wall:,.0f} | {cpu:,.0f} | {cpu / base:.1f}x |")
    mem = min(results["autorag-hp ucb, memory"][1], results["autorag-hp hier_ucb, memory"][1])
    sql = min(v[1] for k, v in results.items() if "SQLite" in k)
    lines += [
        "",
        f"Targets: memory >= 20,000 pairs/s: {'met' if mem >= 20_000 else 'NOT met'} ({mem:,.0f}); "
        f">= 20x Optuna RandomSampler: {'met' if mem / base >= 20 else 'NOT met'} ({mem / base:.1f}x); "
        f"SQLite >= 2,000 pairs/s: {'met' if sql >= 2_000 else 'NOT met'} ({sql:,.0f}).",
        "",
        "SQLite runs in WAL mode with synchronous=NORMAL: every report is committed before report() returns and "
        "survives a killed process (tests/test_tuner.py::test_sigkill_loses_no_returned_report); "
        "pass sqlite_synchronous='FULL' to survive power loss as well (an fsync per commit).",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0
