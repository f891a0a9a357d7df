"""``autorag-hp grid``: evaluate every configuration on every question into a resumable table.

Examples::

    autorag-hp grid --pipeline pipelines/python_docs.yaml --questions 100 --out eval/results/grid.sqlite \\
        --workers 2 --export eval/results/grid.jsonl.gz
    # kill it, run the same command again: it resumes where it stopped
    # several machines: the same command everywhere with a shared PostgreSQL
    autorag-hp grid --pipeline pipelines/python_docs.yaml --questions 100 \\
        --out postgresql://postgres@db/test --storage postgresql://postgres@db/test --study python-docs-grid
"""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pipeline", required=True,
                   help="pipeline spec: a YAML file (pipelines/python_docs.yaml) or module:factory / file.py:factory")
    p.add_argument("--generator", default=None,
                   help="override the pipeline's generator: extractive | local | a YAML mapping such as "
                        "'{type: local, quantize: int8, threads: 1}'")
    p.add_argument("--space", default=None, help="search-space YAML/JSON (default: the pipeline's own space)")
    p.add_argument("--questions", type=int, default=None, help="evaluate the first N questions (default: all)")
    p.add_argument("--out", required=True,
                   help="table: a SQLite file path (grid.sqlite) or a database URL (postgresql://...)")
    p.add_argument("--table", default="grid", help="table name inside --out (several grids can share a database)")
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    p.add_argument("--threads-per-worker", type=int, default=None, help="torch/BLAS threads per worker")
    p.add_argument("--metrics", default=None,
                   help="comma-separated metric names (default: every native metric); e.g. token_f1,mrr,ragas_bleu")
    p.add_argument("--storage", default=None,
                   help="distribute through an Optuna RDB storage URL (PostgreSQL for several machines)")
    p.add_argument("--study", default=None, help="Optuna study name for --storage (default: derived from the table)")
    p.add_argument("--export", default=None, help="also write the table to FILE.jsonl.gz / FILE.csv.gz / FILE.sqlite")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import yaml

    from autorag_hp.evaluation.grid import run_grid

    overrides = {"generator": yaml.safe_load(args.generator)} if args.generator else None
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    summary = run_grid(
        args.pipeline, args.out, pipeline_kwargs=overrides, space=args.space, questions=args.questions, table_name=args.table,
        workers=args.workers, metrics=metrics, storage=args.storage, study=args.study,
        threads_per_worker=args.threads_per_worker, progress=not args.no_progress, export=args.export,
    )
    print(json.dumps(summary, indent=2))
    return 0 if summary["complete"] else 3
