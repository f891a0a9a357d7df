"""``autorag-hp serve``: the online tuning service (FastAPI on uvicorn).

    autorag-hp serve --pipeline python_docs --storage sqlite:///tuning.db --keys keys.json

Several replicas share one PostgreSQL store: run the same command with ``--storage postgresql://...`` and the
same ``--keys`` file on several ports or hosts. The ``--*-timeout``, ``--limit-concurrency`` and
``--max-header-bytes`` defaults are safe on a public port (:mod:`autorag_hp.service.server`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from autorag_hp import overrides


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("pipeline and storage")
    g.add_argument("--pipeline", default="python_docs_faq",
                   help="pipeline spec: a bundled name (%(default)s: the FAQ slice, indexes in minutes; python_docs: "
                        "the whole docs, e5 indexes take ~30 min each on 2 cores; demo) or a YAML file")
    g.add_argument("--generator", default=None, help="override the spec's generator, e.g. 'extractive' (no LLM)")
    overrides.add_arguments(g)
    g.add_argument("--warm", action="store_true",
                   help="build every index the space needs before serving (else the first ask of each builds it)")
    g.add_argument("--storage", default="sqlite:///tuning.db",
                   help="sqlite:///path.db or postgresql://user@host:port/db (shared by replicas)")
    g.add_argument("--study", default="online")
    t = p.add_argument_group("tuning")
    t.add_argument("--policy", default="hier_ucb", help="inner policy (hier_ucb, hier_ts, ucb, thompson, ...)")
    t.add_argument("--policy-params", default=None, help="JSON keyword arguments of the policy")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--batch-size", type=int, default=1, help="questions per decision")
    t.add_argument("--feedback-window", type=float, default=3600.0,
                   help="seconds a trial waits for feedback before it expires (default 3600)")
    t.add_argument("--sync-interval", type=float, default=0.05,
                   help="seconds between reads of what other replicas wrote (default 0.05; 0: before every ask)")
    t.add_argument("--explore", type=float, default=1.0,
                   help="cap on the share of traffic that explores; the rest gets the current best (default 1)")
    t.add_argument("--fallback", default=None,
                   help="pinned configuration (JSON) that exploitation serves until something beats it")
    t.add_argument("--min-count", type=float, default=3.0, help="rewards a configuration needs to count as best")
    t.add_argument("--discount", type=float, default=1.0,
                   help="drift: multiply past statistics by this factor per reward (e.g. 0.995; 1 = off)")
    t.add_argument("--on-change", choices=("continue", "reset"), default="continue",
                   help="when the pipeline changes (new tag): keep the learned state or start a new study")
    t.add_argument("--pipeline-tag", default=None, help="name this pipeline version (default: a digest of it)")
    t.add_argument("--reward", default=None,
                   help="reward used when a request carries a reference answer: a bundled name (python_docs_w0.5), "
                        "a YAML file or inline JSON (default: 2*token_f1 - 1)")
    t.add_argument("--reward-range", default="-1,1", help="accepted range of explicit feedback rewards (lo,hi)")
    s = p.add_argument_group("http and security")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--keys", default=None, help="API keys file (JSON/YAML); default $AUTORAG_HP_KEYS")
    s.add_argument("--generate-keys", metavar="PATH", default=None,
                   help="write a fresh keys file to PATH (if absent) and use it")
    s.add_argument("--insecure-no-auth", action="store_true", help="no API keys at all (local experiments only)")
    s.add_argument("--max-body", type=int, default=16384, help="largest accepted request body in bytes")
    s.add_argument("--max-question-chars", type=int, default=None, help="default: the pipeline's limit")
    s.add_argument("--header-timeout", type=float, default=10.0,
                   help="seconds a connection may take to send a request's line and headers (default 10)")
    s.add_argument("--body-timeout", type=float, default=30.0,
                   help="seconds a request's whole body may take to arrive, else 408 (default 30)")
    s.add_argument("--keep-alive", type=int, default=5, help="seconds an idle connection stays open (default 5)")
    s.add_argument("--limit-concurrency", type=int, default=512,
                   help="open connections + requests in flight per process; past it requests get 503 (default 512)")
    s.add_argument("--max-header-bytes", type=int, default=16384, help="largest request line + headers (default 16384)")
    s.add_argument("--metrics-auth", action="store_true", help="GET /metrics needs the admin key (default: open)")
    s.add_argument("--log-level", default="warning")
    s.add_argument("--replica", default=None, help="name shown in /healthz and the dashboard")
    s.add_argument("--cpus", default=None, metavar="LIST",
                   help="run on these CPUs only, e.g. '0' or '2-3' (Linux): one replica per core, pinned, spends "
                        "less CPU per request than one whose threads move between cores")


def settings_from_args(args: argparse.Namespace):
    from autorag_hp.overrides import config_pairs, parse_json_arg, space_arg
    from autorag_hp.service.controller import ServiceSettings

    lo, hi = (float(x) for x in args.reward_range.split(","))
    kw = {}
    if args.replica:
        kw["replica"] = args.replica
    return ServiceSettings(
        pipeline=args.pipeline, storage=args.storage, generator=args.generator,
        space=space_arg(args.space), config=config_pairs(args.fixed),
        policy=args.policy, policy_params=parse_json_arg(args.policy_params, "--policy-params") or {},
        seed=args.seed, batch_size=args.batch_size, study=args.study, feedback_window=args.feedback_window,
        sync_interval=args.sync_interval, explore=args.explore, fallback=parse_json_arg(args.fallback, "--fallback"),
        min_count=args.min_count,
        discount=args.discount, on_change=args.on_change, pipeline_tag=args.pipeline_tag,
        reward=_reward_arg(args.reward), reward_range=(lo, hi), max_body_bytes=args.max_body,
        max_question_chars=args.max_question_chars, warm=args.warm, body_timeout=args.body_timeout,
        metrics_auth=args.metrics_auth, **kw,
    )


def limits_from_args(args: argparse.Namespace):
    from autorag_hp.service.server import HTTPLimits

    return HTTPLimits(header_timeout=args.header_timeout, keep_alive=args.keep_alive,
                      limit_concurrency=args.limit_concurrency, max_header_bytes=args.max_header_bytes)


def _reward_arg(text: str | None):
    """Inline JSON becomes a spec mapping; anything else (a bundled name or a file) goes to reward_from_spec."""
    from autorag_hp.overrides import parse_json_arg

    return parse_json_arg(text, "--reward") if text and text.lstrip().startswith("{") else text


def keys_from_args(args: argparse.Namespace):
    from pathlib import Path

    from autorag_hp.service.auth import KeyRing

    if args.insecure_no_auth:
        print("WARNING: --insecure-no-auth: anyone who reaches this port can steer the tuner", file=sys.stderr)
        return KeyRing.open()
    if args.generate_keys:
        path = Path(args.generate_keys)
        if not path.exists():
            path.write_text(json.dumps(KeyRing.generate(), indent=2) + "\n")
            path.chmod(0o600)
            print(f"wrote new API keys to {path} (keep it secret; give replicas the same file)", file=sys.stderr)
        return KeyRing.load(path)
    return KeyRing.load(args.keys)


def parse_cpus(text: str) -> set[int]:
    """``'0'``, ``'0-3'``, ``'1,3,5-6'`` as a set of CPU numbers that this machine lets the process use."""
    import os

    cpus: set[int] = set()
    try:
        for part in text.split(","):
            lo, dash, hi = part.strip().partition("-")
            cpus.update(range(int(lo), int(hi if dash else lo) + 1))
    except ValueError:
        raise ValueError(f"--cpus {text!r}: give CPU numbers and ranges such as '0', '2-3' or '0,2'") from None
    allowed = os.sched_getaffinity(0)
    if not cpus or not cpus <= allowed:
        raise ValueError(f"--cpus {text!r}: this process may use CPUs {sorted(allowed)} only")
    return cpus


def run(args: argparse.Namespace) -> int:
    import os

    from autorag_hp.service import server
    from autorag_hp.service.app import create_app

    try:
        if args.cpus:  # before any thread starts: every thread of the process inherits it
            os.sched_setaffinity(0, parse_cpus(args.cpus))
        limits = limits_from_args(args)
        settings = settings_from_args(args)
        keys = keys_from_args(args)
        app = create_app(settings, keys)
    except ValueError as exc:
        print(f"autorag-hp serve: {exc}", file=sys.stderr)
        return 2
    ctl = app.state.controller
    print(f"serving study {ctl.study!r} (pipeline tag {ctl.tag}, {ctl.space.size} configurations) on "
          f"http://{args.host}:{args.port}/  storage {settings.storage}", file=sys.stderr, flush=True)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # incidents (500s) go here
    server.run(app, args.host, args.port, limits, log_level=args.log_level)
    return 0
