"""``autorag-hp grid``: evaluate every configuration on every question into a resumable table.

Examples::

    autorag-hp grid --pipeline python_docs_faq --questions 100 --out eval/results/grid.sqlite \\
        --workers 2 --export eval/results/grid.jsonl.gz
    # kill it, run the same command again: it resumes where it stopped
    # several machines: the same command everywhere with a shared PostgreSQL
    autorag-hp grid --pipeline python_docs_faq --questions 100 \\
        --out postgresql://postgres@db/test --optuna-storage postgresql://postgres@db/test \\
        --optuna-study python-docs-grid
"""

from __future__ import annotations

import argparse
import json

from autorag_hp import overrides
from autorag_hp.commands.options import deprecated_alias


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pipeline", default=None,
                   help="pipeline spec: a bundled name (python_docs_faq), a YAML file, or module:factory / "
                        "file.py:factory")
    p.add_argument("--generator", default=None,
                   help="override the pipeline's generator: extractive | local | a YAML mapping such as "
                        "'{type: local, threads: 1}' (kernels: quantize/dtype auto)")
    p.add_argument("--space", default=None, help=overrides.SPACE_HELP)
    p.add_argument("--questions", type=int, default=None, help="evaluate the first N questions (default: all)")
    p.add_argument("--out", default=None,
                   help="table: a SQLite file path (grid.sqlite) or a database URL (postgresql://...)")
    p.add_argument("--table-name", default="grid",
                   help="table name inside --out (several grids can share a database)")
    deprecated_alias(p, "--table", "--table-name")
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    p.add_argument("--threads-per-worker", type=int, default=None, help="torch/BLAS threads per worker")
    p.add_argument("--generate-batch", type=int, default=1,
                   help="answer LLM prompts N at a time in one padded batch (local model; not with --optuna-storage)")
    p.add_argument("--metrics", default=None,
                   help="comma-separated metric names (default: every native metric); e.g. token_f1,mrr,ragas_bleu")
    p.add_argument("--optuna-storage", default=None,
                   help="distribute the work through an Optuna RDB storage URL (PostgreSQL for several machines); "
                        "not a tuner storage: the grid's results go to --out")
    deprecated_alias(p, "--storage", "--optuna-storage")
    p.add_argument("--optuna-study", default=None,
                   help="Optuna study name in --optuna-storage (default: derived from the table)")
    deprecated_alias(p, "--study", "--optuna-study")
    p.add_argument("--import", dest="import_from", default=None,
                   help="first load the rows of an export of the same grid (resume a committed partial grid)")
    p.add_argument("--export", default=None, help="also write the table to FILE.jsonl.gz / FILE.csv.gz / FILE.sqlite")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    r = p.add_argument_group("difficulty report (no computation): autorag-hp grid --report TABLE")
    r.add_argument("--report", default=None,
                   help="a table (.sqlite) or export (.jsonl.gz/.csv.gz): print how far apart the top configurations "
                        "are relative to per-question noise for each w of the paper reward")
    r.add_argument("--metric", default="token_precision", help="accuracy metric of the paper reward")
    r.add_argument("--threshold", type=float, default=0.5, help="acc = +1 when metric >= threshold, else -1")
    r.add_argument("--w", default="0.1,0.5,0.9", help="reward weights w of r = w·acc − (1−w)·tokens/t_max")
    deprecated_alias(r, "--ws", "--w")
    r.add_argument("--budget-fraction", type=float, default=0.2, help="share of grid LLM calls a tuner may spend")
    r.add_argument("--md", default=None, help="also write the report as Markdown to this file")


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from autorag_hp.evaluation.difficulty import report, to_markdown
    from autorag_hp.evaluation.table_export import read_export

    rows, meta = read_export(args.report)
    rep = report(rows, metric=args.metric, threshold=args.threshold,
                 ws=[float(w) for w in args.w.split(",")], budget_fraction=args.budget_fraction)
    md = to_markdown(rep, meta.get("totals"), meta.get("imported_runs"))
    if args.md:
        Path(args.md).write_text(md, encoding="utf-8")
    print(md)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.report:
        return _report(args)
    if not args.pipeline or not args.out:
        raise SystemExit("autorag-hp grid: --pipeline and --out are required (or --report TABLE for a report)")
    import yaml

    from autorag_hp.evaluation.grid import run_grid
    from autorag_hp.space import SearchSpace

    kwargs = {"generator": yaml.safe_load(args.generator)} if args.generator else None
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    space = overrides.space_arg(args.space)
    summary = run_grid(
        args.pipeline, args.out, pipeline_kwargs=kwargs, space=SearchSpace(space) if space else None,
        questions=args.questions, table_name=args.table_name,
        workers=args.workers, metrics=metrics, storage=args.optuna_storage, study=args.optuna_study,
        threads_per_worker=args.threads_per_worker, progress=not args.no_progress, export=args.export,
        import_from=args.import_from, batch=args.generate_batch,
    )
    print(json.dumps(summary, indent=2))
    return 0 if summary["complete"] else 3
