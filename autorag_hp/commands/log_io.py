"""``autorag-hp export`` / ``autorag-hp import``: a study's event log as JSON lines; ``export --format optuna``
(:mod:`autorag_hp.export`) and ``--format mlflow`` (:mod:`autorag_hp.integrations.mlflow`) write its trials into
an Optuna study or an MLflow run instead.

    autorag-hp export --storage sqlite:///tuning.db --file tune.jsonl     # the storage's only study
    autorag-hp export --storage sqlite:///tuning.db --study tune --format optuna --to sqlite:///optuna.db
    optuna-dashboard sqlite:///optuna.db
    autorag-hp export --storage sqlite:///tuning.db --study tune --format mlflow --to sqlite:///mlflow.db
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", required=True, help="storage URL, e.g. sqlite:///tuning.db or postgresql://user@host/db")
    p.add_argument("--study", default="default")
    p.add_argument("--file", type=Path, default=None, help="JSONL file (default: stdout for export, stdin for import)")
    p.add_argument("--space", type=Path, default=None,
                   help="import only: a space YAML/JSON for a study that does not exist yet in the target storage")


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    add_arguments(p)
    p.set_defaults(study=None)  # export: the storage's only study unless --study names one
    p.add_argument("--format", choices=("jsonl", "optuna", "mlflow"), default="jsonl",
                   help="jsonl: the event log (to --file or stdout); optuna: the trials into an Optuna study at --to; "
                        "mlflow: one MLflow run of the study, metrics per decision, at tracking URI --to")
    p.add_argument("--to", default=None, metavar="URL",
                   help="optuna: its storage URL or a path (sqlite:///optuna.db); mlflow: the tracking URI "
                        "(sqlite:///mlflow.db, file:///path/mlruns, http://host:5000)")
    p.add_argument("--name", default=None,
                   help="the Optuna study / MLflow experiment to write (default: the study's own name)")
    p.add_argument("--replace", action="store_true", help="optuna: overwrite an Optuna study of that name")


def _export_to(args: argparse.Namespace, storage) -> int:
    from autorag_hp.errors import AutoRAGHPError
    from autorag_hp.reporting.study import masked

    if not args.to:
        example = "sqlite:///optuna.db" if args.format == "optuna" else "sqlite:///mlflow.db"
        print(f"error: --format {args.format} needs --to (e.g. --to {example})", file=sys.stderr)
        return 2
    if args.file:
        print(f"error: --file is for --format jsonl; --format {args.format} writes to --to", file=sys.stderr)
        return 2
    try:
        if args.format == "optuna":
            from autorag_hp.export import to_optuna

            study = to_optuna(storage, args.study, args.to, optuna_study=args.name, replace=args.replace)
            print(f"exported {len(study.trials)} trials of study {args.study!r} into Optuna study "
                  f"{study.study_name!r} at {masked(args.to)}", file=sys.stderr)
            return 0
        if args.replace:
            print("error: --replace is for --format optuna (an MLflow export continues the study's one run)",
                  file=sys.stderr)
            return 2
        from autorag_hp.integrations.mlflow import MLflowLogger

        logger = MLflowLogger(storage, args.study, tracking_uri=args.to, experiment=args.name)
        n = logger.sync()
        print(f"logged {n} decisions of study {args.study!r} to MLflow run {logger.run_id} (experiment "
              f"{logger.experiment!r}) at {masked(args.to)}", file=sys.stderr)
        return 0
    except (AutoRAGHPError, ValueError, ImportError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    from autorag_hp.errors import AutoRAGHPError
    from autorag_hp.space import SearchSpace
    from autorag_hp.storage import Event, open_storage

    if args.command == "export":
        if args.format == "jsonl" and args.to:
            print("error: --to is for --format optuna or mlflow; the JSONL log goes to --file", file=sys.stderr)
            return 2
        from autorag_hp.commands.show import pick_study
        from autorag_hp.reporting.study import open_existing

        try:
            storage = open_existing(args.storage)  # reading: a mistyped SQLite path is an error, not a new file
        except AutoRAGHPError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        try:
            args.study = pick_study(storage, args.study)
        except AutoRAGHPError as exc:
            storage.close()
            print(f"error: {exc}", file=sys.stderr)
            return 2
    else:
        storage = open_storage(args.storage)
    try:
        if args.command == "export" and args.format != "jsonl":
            return _export_to(args, storage)
        if args.command == "export":
            if args.study not in storage.studies():
                print(f"error: no study {args.study!r} in {args.storage}; studies: {storage.studies()}", file=sys.stderr)
                return 2
            out = open(args.file, "w", encoding="utf-8") if args.file else sys.stdout
            n = 0
            for ev in storage.events(args.study):
                out.write(ev.to_json() + "\n")
                n += 1
            if args.file:
                out.close()
            print(f"exported {n} events from study {args.study!r}", file=sys.stderr)
            return 0
        src = open(args.file, encoding="utf-8") if args.file else sys.stdin
        try:
            events = [Event.from_json(line) for line in src if line.strip()]
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.study not in storage.studies():
            if args.space is None:
                print(f"error: study {args.study!r} does not exist in {args.storage}; pass --space to create it",
                      file=sys.stderr)
                return 2
            storage.open_study(args.study, SearchSpace.from_file(args.space), {"imported": True})
        try:
            n = storage.import_events(args.study, events)
        except (ValueError, AutoRAGHPError) as exc:
            print(f"error: {exc} (nothing was imported)", file=sys.stderr)
            return 2
        print(f"imported {n} events into study {args.study!r}", file=sys.stderr)
        return 0
    finally:
        storage.close()
