"""``autorag-hp export`` / ``autorag-hp import``: a study's event log as JSON lines."""

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


def run(args: argparse.Namespace) -> int:
    from autorag_hp.errors import AutoRAGHPError
    from autorag_hp.space import SearchSpace
    from autorag_hp.storage import Event, open_storage

    storage = open_storage(args.storage)
    try:
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
