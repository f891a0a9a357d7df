"""``autorag-hp show``: a stored study as a table in the terminal, or as ``report.md`` with PNGs (``--report``).

    autorag-hp show --storage sqlite:///tuning.db                     # the only study there
    autorag-hp show --storage sqlite:///tuning.db --study tune --report report/

Reads the study through the storage's public listing (no pipeline, no policy loaded); see
:mod:`autorag_hp.reporting` for what the tables and plots hold.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", required=True, help="storage URL, e.g. sqlite:///tuning.db or postgresql://user@host/db")
    p.add_argument("--study", default=None, help="study name (default: the storage's only study)")
    p.add_argument("--report", type=Path, default=None, metavar="DIR",
                   help="write DIR/report.md with arms.png, reward.png and exploration.png instead of printing a table")
    p.add_argument("--top", type=int, default=5, help="how many best configurations to list (default %(default)s)")


def pick_study(storage, study: str | None) -> str:
    """``study``, or the storage's only one; a clear error naming the studies there otherwise."""
    from autorag_hp.errors import UnknownStudyError
    from autorag_hp.reporting.study import masked

    if study is not None:
        return study
    names = storage.studies()
    if len(names) == 1:
        return names[0]
    if not names:
        raise UnknownStudyError(f"{masked(storage.url)} holds no study yet")
    raise UnknownStudyError(f"{masked(storage.url)} holds {len(names)} studies ({', '.join(names)}); pick one with --study")


def run(args: argparse.Namespace) -> int:
    from autorag_hp.errors import AutoRAGHPError
    from autorag_hp.reporting import load_study, terminal, write_report
    from autorag_hp.reporting.render import command_line
    from autorag_hp.reporting.study import open_existing

    if args.top < 1:
        print("error: --top must be at least 1", file=sys.stderr)
        return 2
    try:
        storage = open_existing(args.storage)
    except (AutoRAGHPError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        data = load_study(storage, pick_study(storage, args.study), top=args.top)
        if args.report is None:
            sys.stdout.write(terminal(data))
            return 0
        files = write_report(data, args.report, command=command_line(args))
    except (AutoRAGHPError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        storage.close()
    print(f"wrote {files[0]} and {len(files) - 1} plots", file=sys.stderr)
    return 0
