"""``autorag-hp dashboard``: the service's dashboard, read-only, over a stored study (no pipeline, no model, no
index loaded).

    autorag-hp dashboard --storage sqlite:///tuning.db                 # the only study there, on 127.0.0.1:8001
    autorag-hp dashboard --storage postgresql://u@db/tuning --study online --keys keys.json --host 0.0.0.0

The page and its read endpoints (``/v1/dashboard``, ``/v1/best``, ``/v1/arms``, ``/v1/trials``) are those of
``serve`` (:mod:`autorag_hp.service.readonly`); no route asks or reports. It reads the storage as it grows, so it
can watch a study that a service or ``tune`` is writing. Without ``--keys`` anyone who reaches the port may read
the study, so that is allowed on a loopback host only.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", required=True, help="storage URL, e.g. sqlite:///tuning.db or postgresql://user@host/db")
    p.add_argument("--study", default=None, help="study name (default: the storage's only study)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--keys", default=None,
                   help="API keys file (JSON/YAML) as for serve: the page then needs a feedback or admin key "
                        "(/#key=...); default: no keys, on a loopback host only")
    p.add_argument("--log-level", default="warning")


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    from autorag_hp.commands.show import pick_study
    from autorag_hp.errors import AutoRAGHPError
    from autorag_hp.reporting.study import masked, open_existing
    from autorag_hp.service import server
    from autorag_hp.service.app import create_app
    from autorag_hp.service.auth import KeyRing
    from autorag_hp.service.readonly import StudyView

    if args.keys is None and not loopback(args.host):
        print(f"error: without --keys anyone reaching {args.host}:{args.port} could read the study; give --keys FILE "
              "(or serve on 127.0.0.1)", file=sys.stderr)
        return 2
    try:
        keys = KeyRing.load(args.keys) if args.keys else KeyRing.open()
        storage = open_existing(args.storage)
        view = StudyView(storage, pick_study(storage, args.study), keys)
        app = create_app(view.settings, keys, controller=view, read_only=True)
    except (AutoRAGHPError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"dashboard of study {view.study!r} ({view.space.size} configurations, policy {view.settings.policy}) in "
          f"{masked(storage.url)}, read-only, on http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server.run(app, args.host, args.port, log_level=args.log_level)
    return 0
