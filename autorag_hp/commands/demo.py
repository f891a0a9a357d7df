"""``autorag-hp demo``: what ``make demo`` runs.

By default it tunes the real RAG pipeline (the bundled ``demo`` pipeline: the Python FAQ, BM25 and MiniLM
retrieval, SmolLM2 with the kernels measured fastest on this CPU) online with Hier-UCB on a stream of questions and prints the best
configurations. ``--synthetic`` instead replays every policy side by side on a reward table with a known
optimum (seconds, no models).
"""

from __future__ import annotations

import argparse

from autorag_hp.commands.options import deprecated_alias

DEMO_SPACE = {
    "retrieval": {"chunk_size": [256, 512, 1024], "top_k": [1, 3, 5, 7, 9], "embedding": ["bm25", "minilm", "e5"]},
    "generation": {"temperature": [0.0, 0.7], "prompt": ["concise", "cite", "stepwise"]},
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--synthetic", action="store_true", help="replay the policies on a synthetic table instead")
    p.add_argument("--pipeline", default="demo", help="pipeline spec: a bundled name (default: %(default)s) or a YAML file")
    p.add_argument("--questions", type=int, default=48, help="questions to stream through the pipeline")
    p.add_argument("--timeout", type=float, default=420,
                   help="stop tuning after this many seconds (default %(default)s, so a slow CPU still finishes in "
                        "~10 min; 0 = no limit)")
    p.add_argument("--policies", default="grid,random,ucb,thompson,epsilon_greedy,hier_ucb,hier_ts")
    p.add_argument("--budget", type=float, default=0.2, help="share of grid search's evaluations (default 0.2)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="questions per decision (synthetic: 4 as in the paper; live: 2)")
    deprecated_alias(p, "--batch", "--batch-size", type=int)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--noise", type=float, default=0.3)


def run(args: argparse.Namespace) -> int:
    if args.synthetic:
        return run_synthetic(args)
    import time

    from autorag_hp.cli import main

    t0 = time.perf_counter()
    print("autorag-hp demo: tuning the bundled Python-FAQ RAG pipeline online with Hier-UCB")
    print("(the first run converts SmolLM2 once and builds the MiniLM indexes when a configuration first needs "
          "them; later runs reuse the cache)\n")
    rc = show_example(args.pipeline, t0)
    if rc:
        return rc
    argv = ["tune", "--pipeline", args.pipeline, "--policy", "hier_ucb", "--questions", str(args.questions),
            "--batch-size", str(args.batch_size or 2), "--seed", "0", "--top", "5"]
    if args.timeout:
        argv += ["--timeout", str(args.timeout)]
    print(f"Tuning on up to {args.questions} questions"
          + (f" or {args.timeout:g} s, whichever comes first" if args.timeout else "") + ":")
    return main(argv)


def show_example(pipeline: str, t0: float) -> int:
    """Answer one question with the pipeline's default configuration (BM25: no index to embed) and print it,
    so a newcomer sees what is being tuned before the tuning starts."""
    import sys
    import time

    from autorag_hp.errors import AutoRAGHPError
    from autorag_hp.rag import load_pipeline

    try:
        pipe = load_pipeline(pipeline, progress=True)
        item = pipe.questions()[0]
        print(f"Loading SmolLM2 and answering one question with the default configuration "
              f"({' '.join(f'{k}={v}' for k, v in pipe.resolve_config(None).items())}) ...", flush=True)
        answer = pipe.run(item)
    except (AutoRAGHPError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"  generator: {pipe.generator.describe() if hasattr(pipe.generator, 'describe') else pipe.generator}")
    print(f"  Q: {item.question}\n  A: {' '.join(answer.text.split())}\n  sources: {', '.join(c.source for c in answer.contexts)}"
          f"{'  (gold: ' + ', '.join(item.sources) + ')' if item.sources else ''}")
    print(f"  first answer {time.perf_counter() - t0:.1f} s after start ({answer.latency_s:.1f} s for this "
          f"question, {answer.prompt_tokens} prompt + {answer.completion_tokens} new tokens)\n", flush=True)
    return 0


def run_synthetic(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from autorag_hp import SearchSpace
    from autorag_hp.evaluation.replay import SyntheticTable, replay

    args.batch_size = args.batch_size or 4
    space = SearchSpace(DEMO_SPACE)
    table = SyntheticTable.make(space, seed=0, noise=args.noise, interaction=0.1, tokens_effect=None)
    R = table.rewards(args.batch_size)  # grid search evaluates each configuration on one batch of questions
    budget = int(round(args.budget * R.size))
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    print(f"Search space: {space.size} configurations ({', '.join(f'{p.name}:{len(p)}' for p in space.params)})")
    print(f"Reward table: synthetic, known optimum {table.means.max():+.3f}, per-question noise sd {args.noise}")
    print(f"Budget: {budget} evaluations = {args.budget:.0%} of grid search's {R.size}; B = {args.batch_size}; "
          f"{args.seeds} seeds\n")
    rows = []
    with tqdm(total=len(policies) * args.seeds, desc="replaying", unit="run") as bar:
        for name in policies:
            res = []
            for seed in range(args.seeds):
                out = replay(R, space, name, batch=args.batch_size, seed=seed, fractions=[budget / R.size], ks=(5,),
                             truth=table.means)
                res.append({k: float(out[k][-1]) for k in ("recall@5", "served", "deployed")})
                bar.update()
            rows.append((name, *(np.mean([r[k] for r in res]) for k in ("recall@5", "served", "deployed")),
                         np.std([r["recall@5"] for r in res])))
    rows.sort(key=lambda r: -r[1])
    print(f"\n{'policy':<16}{'Recall@5':>14}{'served reward':>15}{'deployed true score':>21}")
    for name, rec, served, dep, rec_sd in rows:
        print(f"{name:<16}{rec:>8.2f} ± {rec_sd:<4.2f}{served:>15.3f}{dep:>21.3f}")
    print(f"\n(optimum {table.means.max():+.3f}; Recall@5 = overlap of the policy's top-5 with the true top-5; grid = "
          "every configuration on the first questions of the stream, at least one)")
    print("This demo replays a synthetic table; `autorag-hp tune` runs the real RAG pipeline.")
    return 0
