"""``autorag-hp bench``: replay tuning policies against a grid table and compare them with grid search.

Examples::

    autorag-hp bench --table eval/results/grid_python_docs.sqlite \\
        --policies grid,random,ucb,thompson,hier_ucb,hier_ts,optuna_tpe,additive_lucb \\
        --w 0.1,0.5,0.9 --seeds 20 --batch-size 4 --out eval/results/bench/python_docs
    autorag-hp bench --synthetic --out /tmp/bench-synthetic          # a table with known structure

Writes ``report.md`` (the paper's Table 1 at 20 % of grid's calls, calls to Recall@5 ≥ 0.8, served reward,
deployed score, recall vs budget), ``results.json`` and PNG plots (± std bands) into ``--out``. See
:mod:`autorag_hp.evaluation.replay` for what is measured and how.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from autorag_hp.commands.options import deprecated_alias
from autorag_hp.overrides import config_pairs

DEFAULT_POLICIES = "grid,random,ucb,thompson,hier_ucb,hier_ts,optuna_tpe,additive_lucb"


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--table", help="grid table: export (.jsonl.gz / .csv.gz), SQLite file, or database URL")
    src.add_argument("--synthetic", action="store_true", help="use a synthetic table with known structure")
    p.add_argument("--table-name", default=None, help="table name inside a database (default: the only one / 'grid')")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", dest="fixed",
                   help="restrict to the sub-space where KEY=VALUE, e.g. --set temperature=0.0 (repeatable)")
    deprecated_alias(p, "--fix", "--set", dest="fixed", append=True)
    p.add_argument("--max-questions", type=int, default=None, help="use only the first N complete questions")
    p.add_argument("--synthetic-questions", type=int, default=175)
    p.add_argument("--synthetic-seed", type=int, default=0)
    p.add_argument("--synthetic-effect", type=float, default=0.25,
                   help="sd of the per-value quality effects; larger = configurations further apart = easier")
    p.add_argument("--synthetic-interaction", type=float, default=0.05, help="sd of the pairwise interactions")
    p.add_argument("--policies", default=DEFAULT_POLICIES,
                   help="comma-separated: grid and registered policy names; NAME@RULE ranks that method's "
                        "recommendation by another rule (policy, posterior, lcb, mean)")
    p.add_argument("--w", default="0.1,0.5,0.9", help="reward weights w of r = w·acc − (1−w)·tokens/t_max")
    p.add_argument("--metric", default="answer_contains_reference", help="the accuracy metric of the reward")
    p.add_argument("--threshold", default="0.5",
                   help="acc = +1 when metric ≥ threshold, else −1; 'median': the metric's median over the table's "
                        "cells (half the answers count as correct: a graded metric such as token_f1 made binary)")
    p.add_argument("--t-max", type=float, default=1000.0, help="token normaliser t_max")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=4, help="questions per decision (the paper's B = 4)")
    deprecated_alias(p, "--batch", "--batch-size", type=int)
    p.add_argument("--rule", choices=("policy", "posterior", "lcb", "mean"), default="policy",
                   help="what each method deploys: best(1) under this ranking rule (default: the policy's own, "
                        "exactly what Tuner.best returns)")
    p.add_argument("--holdout", type=float, default=None, metavar="SHARE",
                   help="hold out this share of the questions per seed: methods tune on the rest and are judged "
                        "(regret, Recall@k) by grid on the held-out part")
    p.add_argument("--step", type=float, default=0.01, help="checkpoint spacing as a share of grid's calls")
    p.add_argument("--max-budget", type=float, default=1.0, help="largest budget, as a share of grid's calls")
    p.add_argument("--tpe-seeds", type=int, default=5, help="seeds for optuna_tpe (O(trials) per decision)")
    p.add_argument("--tpe-max-budget", type=float, default=0.25, help="budget cap for optuna_tpe")
    p.add_argument("--live", default=None, metavar="PIPELINE",
                   help="also tune on this live pipeline (YAML) and compare with the replay (issue 5, section 3)")
    p.add_argument("--live-policies", default="random,hier_ucb,additive_lucb")
    p.add_argument("--live-w", type=float, default=0.5, help="the setting of the live check")
    p.add_argument("--live-budget", type=float, default=0.2, help="live budget as a share of grid's calls")
    p.add_argument("--live-seeds", type=int, default=2)
    p.add_argument("--jobs", type=int, default=1, help="processes")
    p.add_argument("--out", default="eval/results/bench", help="output folder")
    p.add_argument("--snapshot", default=None, metavar="FILE.jsonl.gz",
                   help="freeze the rows used (configurations × complete questions, no contexts) for re-runs")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from autorag_hp.evaluation.bench_report import write_report
    from autorag_hp.evaluation.replay import ReplayTable, run_bench, split_method
    from autorag_hp.evaluation.rewards import PaperReward
    from autorag_hp.policies import available

    methods = [m.strip() for m in args.policies.split(",") if m.strip()]
    for m in methods:
        try:
            name = split_method(m)[0]
        except ValueError as exc:
            print(f"--policies {m!r}: {exc}", file=sys.stderr)
            return 2
        if name != "grid" and name not in available():
            print(f"unknown policy {name!r}; available: grid, {', '.join(available())}", file=sys.stderr)
            return 2
    try:
        fix = config_pairs(args.fixed)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    if args.synthetic:
        from autorag_hp.evaluation.replay import SyntheticTable
        from autorag_hp.space import SearchSpace

        space = SearchSpace({"retrieval": {"chunk_size": [256, 512, 1024], "top_k": [1, 3, 5],
                                           "embedding": ["bm25", "minilm", "e5"]},
                             "generation": {"prompt": ["concise", "cite", "stepwise"], "temperature": [0.0, 0.7]}})
        table = SyntheticTable.make(space, seed=args.synthetic_seed, effect=args.synthetic_effect,
                                    interaction=args.synthetic_interaction).replay_table(args.synthetic_questions)
        source = (f"synthetic (seed {args.synthetic_seed}, additive effects sd {args.synthetic_effect:g} + "
                  f"interactions sd {args.synthetic_interaction:g}, known ground truth)")
    else:
        table = ReplayTable.load(args.table, name=args.table_name, fix=fix or None, max_questions=args.max_questions)
        source = f"`{args.table}`" + (f" restricted to {fix}" if fix else "")
    if table.note:
        print(table.note, file=sys.stderr)
    if args.snapshot and not args.synthetic:
        from autorag_hp.evaluation.replay import write_snapshot

        write_snapshot(args.table, args.snapshot, table, name=args.table_name)
        source += f" (frozen as `{args.snapshot}`)"
    if str(args.threshold) == "median":
        import numpy as np

        args.threshold = float(np.median(table.metric(args.metric)))
        print(f"threshold: median {args.metric} = {args.threshold:.4f}", file=sys.stderr)
    args.threshold = float(args.threshold)
    rewards = {f"w={w:g}": PaperReward(w=w, metric=args.metric, threshold=args.threshold, t_max=args.t_max)
               for w in _floats(args.w)}
    source += f"; reward metric `{args.metric}` ≥ {args.threshold:.4g} counts as correct, t_max = {args.t_max:g}"
    n = int(round(args.max_budget / args.step))
    fractions = [round(args.step * i, 6) for i in range(1, n + 1)]
    start = time.perf_counter()
    res = run_bench(table, methods, rewards, seeds=args.seeds, batch=args.batch_size, fractions=fractions,
                    rule=args.rule, holdout=args.holdout, method_seeds={"optuna_tpe": args.tpe_seeds},
                    max_fraction={"optuna_tpe": args.tpe_max_budget}, jobs=args.jobs,
                    progress=not args.no_progress)
    seconds = time.perf_counter() - start
    command = "autorag-hp " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["bench"] else None
    from autorag_hp.evaluation.cpu_kinds import describe_cpu, this_cpu

    out = write_report(res, args.out, command=command, source=source, seconds=seconds, make_plots=not args.no_plots,
                       cpu=describe_cpu(this_cpu()))
    if args.live:
        live_md = _live_check(args, table)
        with open(f"{args.out}/report.md", "a", encoding="utf-8") as f:
            f.write(live_md)
        out["markdown"] += live_md
    print(out["markdown"])
    print("wrote " + ", ".join(out["files"]), file=sys.stderr)
    return 0


def _live_check(args: argparse.Namespace, table) -> str:
    """Tune on the live pipeline for one setting with a small budget; compare with the replay, seed by seed."""
    from autorag_hp.evaluation.replay import live_run, replay
    from autorag_hp.evaluation.rewards import PaperReward
    from autorag_hp.rag import load_pipeline

    reward = PaperReward(w=args.live_w, metric=args.metric, threshold=args.threshold, t_max=args.t_max)
    R = table.reward_matrix(reward)
    calls = int(round(args.live_budget * table.grid_calls / args.batch_size)) * args.batch_size
    pipe = load_pipeline(args.live)
    lines = ["", f"## Live check — w={args.live_w:g}, {calls:,} calls ({100 * calls / table.grid_calls:.0f} % of grid)", "",
             f"The same policies tuned on the live pipeline `{args.live}` through a real `Tuner` (each call runs "
             "retrieve → prompt → generate → metrics), on the table's questions in the replay's order, ranked by "
             f"`Tuner.best(rule={args.rule!r})`, the replay's rule. *agree* = share of calls whose live reward equals the table's cell.", "",
             _cpu_note(table.meta), "",
             "| policy | seed | live R@5 | replay R@5 | live served | replay served | live deployed | replay deployed | agree |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in [m.strip() for m in args.live_policies.split(",") if m.strip()]:
        for seed in range(args.live_seeds):
            live = live_run(pipe, table, name, reward, budget_calls=calls, batch=args.batch_size, seed=seed,
                            rule=args.rule, progress=not args.no_progress)
            rep = replay(R, table.space, name, batch=args.batch_size, seed=seed, fractions=[calls / table.grid_calls],
                         rule=args.rule)
            lines.append(f"| {name} | {seed} | {live['recall@5']:.2f} | {float(rep['recall@5'][0]):.2f} | "
                         f"{live['served']:.4f} | {float(rep['served'][0]):.4f} | {live['deployed']:.4f} | "
                         f"{float(rep['deployed'][0]):.4f} | {live['agree']:.3f} |")
    return "\n".join(lines) + "\n"


def _cpu_note(meta: dict) -> str:
    """Which CPU kinds made the table and run the live check: LLM answers agree exactly only on the same kind."""
    from autorag_hp.evaluation.cpu_kinds import describe_cpu, made_on, same_cpu_kind, this_cpu

    here, table_cpu = this_cpu(), made_on(meta)
    cpus = meta.get("cpus") or []
    made = describe_cpu(table_cpu) if table_cpu else (" + ".join(describe_cpu(c) for c in cpus) or "not recorded")
    same = same_cpu_kind(table_cpu, here)
    return (f"Table computed on: {made}. Live check on: {describe_cpu(here)}. "
            + ("Same CPU kind: temperature-0 LLM answers should agree exactly." if same else
               "Not the same CPU kind (or unknown): LLM answers may differ in their floating-point rounding, "
               "so *agree* below 1 does not by itself mean the pipeline changed."))
