"""``autorag-hp bench-history``: restart time and ``/v1/trials`` latency against the length of a study's history.

For each backend (a SQLite file; PostgreSQL in a database of its own, created on the given server and dropped
after) and each history length (default 1k, 100k and 1M events), a fresh store is filled with a log of that
length, then:

* **restart**: opening the service's tuner on it (``Tuner(...)``: schema check, study, snapshot, the events
  after it, the fold), with snapshots (the newest one plus its tail, as the service runs) and without
  (``snapshot_every=0``: the whole log folded, as before snapshots existed);
* **listing**: ``GET /v1/trials`` through the real app (FastAPI ``TestClient``, in process) for the admin key,
  a feedback key (its own client's trials), ``state=pending``, and a page deep in the history (``after=`` a
  cursor half-way), against the listing as it was (every trial read, the last ``limit`` kept).

Filling: the log is made by the service's own policy (``online`` over ``hier_ucb``, the service's settings) in
memory, on ``--questions`` distinct questions and four clients, 90 % of trials reported, 5 % expired, 5 % left
pending; its rows (events, the trials table, aggregates) are then inserted in bulk directly (``COPY`` on
PostgreSQL, ``executemany`` on SQLite), not through the HTTP service. The service is then run for
``--steady`` asks and reports through its tuner, so the snapshot it restarts from was written the way the
service writes them (with an event, every 1,000 events). Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path

SPACE = {"chunk_size": [256, 512, 1024], "top_k": [1, 3, 5, 7]}
FIXED = {"embedding": "bm25"}
CLIENTS = ("c0", "c1", "c2", "c3")
ADMIN_KEY = "admin-bench-0123456789"
STUDY = "bench"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", default="1000,100000,1000000", help="history lengths in events, comma-separated")
    p.add_argument("--backends", default="sqlite,postgres", help="sqlite and/or postgres")
    p.add_argument("--pg", default=os.environ.get("AUTORAG_HP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"),
                   help="a PostgreSQL server (URL of any database on it): each size gets a database of its own there")
    p.add_argument("--questions", type=int, default=2000, help="distinct questions in the generated traffic")
    p.add_argument("--steady", type=int, default=600, help="asks+reports through the service after the bulk fill")
    p.add_argument("--repeats", type=int, default=30, help="requests per listing measurement")
    p.add_argument("--old-max", type=int, default=1_000_000, help="measure the old whole-log paths up to this size")
    p.add_argument("--out", type=Path, default=None, help="folder for history.json and history.md")


# --- the log -----------------------------------------------------------------------------------------------------
class _Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def _settings(storage: str):
    from autorag_hp.service.controller import ServiceSettings

    return ServiceSettings(storage=storage, generator="extractive", space=SPACE, config=FIXED, explore=0.5,
                           study=STUDY, pipeline_tag="bench", feedback_window=3600.0)


def _keys():
    from autorag_hp.service.auth import KeyRing

    return KeyRing.from_mapping({"clients": {c: {"ask": f"ask-{c}-0123456789", "feedback": f"fb-{c}-0123456789"}
                                             for c in CLIENTS}, "admin": [ADMIN_KEY]})


def generate(n_events: int, policy_params: dict, n_questions: int, seed: int = 0):
    """(events, owner by trial id, expiry by trial id): ``n_events`` events of the service's policy in memory."""
    import numpy as np

    from autorag_hp.policies.online import OnlinePolicy
    from autorag_hp.space import SearchSpace
    from autorag_hp.storage import MemoryStorage
    from autorag_hp.tuner import Tuner

    space = SearchSpace(SPACE)
    mem = MemoryStorage()
    dt = 0.004
    clock = _Clock(time.time() - dt * n_events / 1.9 - 60.0)  # ends a minute ago: nothing is overdue yet
    tuner = Tuner(space, policy=OnlinePolicy(space, seed=0, **policy_params), storage=mem, study="gen", trial_timeout=3600.0, clock=clock, snapshot_every=0)
    rng = np.random.default_rng(seed)
    quality = {c.id: 0.1 * i for i, c in enumerate(space.configs())}
    i = 0
    while tuner.last_seq < n_events:
        clock.t += dt
        tr = tuner.suggest(question=f"question {int(rng.integers(n_questions))}", owner=CLIENTS[i % len(CLIENTS)])
        u = rng.random()
        if u < 0.90:
            tuner.report(tr.id, float(np.clip(quality[tr.config.id] - 0.5 + 0.3 * rng.standard_normal(), -1, 1)))
        elif u < 0.95:
            mem.expire_trial("gen", tr.id, clock.t)
            tuner.sync()
        i += 1
    trials = {t.trial_id: t for t in mem.trials("gen")}
    return mem.events("gen")[:n_events], trials


def rows_of(events, trials, sid: int):
    """The three tables' rows for ``events`` (a prefix of a log): events, trials (their state at the prefix's
    end), aggregates."""
    from autorag_hp.space import Config

    ids: dict[str, str] = {}
    ev_rows, tr_rows, stats = [], {}, {}
    for ev in events:
        info = json.dumps(ev.info, sort_keys=True)
        ev_rows.append((ev.seq, sid, ev.kind, ev.trial_id, ev.config, ev.reward, info, ev.time))
        cid = ids.get(ev.config) or ids.setdefault(ev.config, Config.from_json(ev.config).id)
        if ev.kind == "suggest":
            t = trials[ev.trial_id]
            tr_rows[ev.trial_id] = [sid, ev.trial_id, ev.seq, ev.config, cid, info, "pending", ev.time, t.expires_at,
                                    None, None, t.owner]
        elif ev.kind == "report":
            r = tr_rows[ev.trial_id]
            r[6], r[9], r[10] = "reported", ev.reward, ev.time
            s = stats.setdefault(cid, [sid, cid, ev.config, 0, 0.0, 0.0])
            s[3] += 1
            s[4] += ev.reward
            s[5] += ev.reward * ev.reward
        else:
            tr_rows[ev.trial_id][6] = "expired"
    return ev_rows, [tuple(r) for r in tr_rows.values()], [tuple(s) for s in stats.values()]


_COLS = {
    "autorag_events": "seq, study_id, kind, trial_id, config, reward, info, time",
    "autorag_trials": "study_id, trial_id, n, config, config_id, info, state, created_at, expires_at, reward, "
                      "reported_at, owner",
    "autorag_stats": "study_id, config_id, config, count, sum, sumsq",
}


def bulk_insert(storage, ev_rows, tr_rows, st_rows) -> float:
    """Insert the rows in one transaction, directly (COPY / executemany); return the seconds it took."""
    t0 = time.perf_counter()
    with storage.engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        cur = raw.cursor()
        for table, rows in (("autorag_events", ev_rows), ("autorag_trials", tr_rows), ("autorag_stats", st_rows)):
            cols = _COLS[table]
            if storage.dialect == "postgresql":
                with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    for r in rows:
                        copy.write_row(r)
            else:
                marks = ", ".join("?" * len(cols.split(",")))
                cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
        if storage.dialect == "postgresql":
            cur.execute("SELECT setval(pg_get_serial_sequence('autorag_events', 'seq'), (SELECT max(seq) FROM autorag_events))")
    if storage.dialect == "postgresql":
        with storage.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")  # what autovacuum does after a large insert
    return time.perf_counter() - t0


# --- the measurements --------------------------------------------------------------------------------------------
def _timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _summary(seconds: list[float]) -> dict:
    ms = sorted(1e3 * s for s in seconds)
    return {"median_ms": round(statistics.median(ms), 2), "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 2),
            "min_ms": round(ms[0], 2), "n": len(ms)}


def measure(url: str, size: int, log, pipeline, args) -> dict:
    """Fill the empty store at ``url`` with the first ``size`` events of ``log`` and measure it (module docstring)."""
    from fastapi.testclient import TestClient

    from autorag_hp.policies.online import OnlinePolicy
    from autorag_hp.service.app import create_app
    from autorag_hp.service.controller import Controller
    from autorag_hp.storage.sql import SQLStorage
    from autorag_hp.tuner import Tuner

    keys = _keys()
    ctl = Controller(_settings(url), keys, pipeline=pipeline)
    params = ctl.policy.params()
    space, seed = ctl.space, ctl.settings.seed
    ctl.close()
    store = SQLStorage(url)
    sid = _study_id(store)
    events, trials = log
    ev_rows, tr_rows, st_rows = rows_of(events[:size], trials, sid)
    fill_s = bulk_insert(store, ev_rows, tr_rows, st_rows)
    store.close()
    out: dict = {"events": size, "trials": len(tr_rows), "fill_s": round(fill_s, 2)}

    def open_tuner(every):
        t = Tuner(space, policy=OnlinePolicy(space, seed=seed, **params), storage=url, seed=seed, study=STUDY,
                  trial_timeout=3600.0, snapshot_every=every)
        t.close()

    old = size <= args.old_max
    if old:  # before: the whole log folded at every start, every trial read for a listing
        out["restart_full_fold"] = _summary(_timed(lambda: open_tuner(0), 1 if size >= 100_000 else 3))
        st = SQLStorage(url)
        out["trials_old_listing"] = _summary(_timed(lambda: st.trials(STUDY)[-100:], 1 if size >= 100_000 else 3))
        st.close()
    # the service as it runs: the first start folds the log and stores a snapshot; then --steady asks and reports,
    # with a snapshot in the transaction of every 1,000th event
    ctl = Controller(_settings(url), keys, pipeline=pipeline)
    steps = []
    for i in range(args.steady):
        t0 = time.perf_counter()
        tr = ctl.tuner.suggest(question=f"question {i % args.questions}", owner=CLIENTS[i % len(CLIENTS)])
        if i % 10:
            ctl.tuner.report(tr.id, 0.25)
        steps.append(time.perf_counter() - t0)
    snap = ctl.tuner.storage.snapshot(STUDY, ctl.tuner.snapshot_version)
    out["snapshot"] = {"seq": snap.seq, "tail_events": ctl.tuner.last_seq - snap.seq, "bytes": len(snap.state)}
    out["steady_suggest_report"] = {**_summary(steps), "max_ms": round(1e3 * max(steps), 2)}  # max: with a snapshot
    st = ctl.tuner.storage
    out["trial_page_storage"] = {  # the storage call alone, without HTTP and JSON
        "newest_100": _summary(_timed(lambda: st.trial_page(STUDY, limit=100), args.repeats)),
        "owner_pending_100": _summary(_timed(lambda: st.trial_page(STUDY, owner="c0", state="pending", limit=100),
                                             args.repeats)),
    }
    ctl.close()
    out["restart_from_snapshot"] = _summary(_timed(lambda: open_tuner(1000), 5))

    ctl = Controller(_settings(url), keys, pipeline=pipeline)
    admin, fb = {"X-API-Key": ADMIN_KEY}, {"Authorization": "Bearer fb-c0-0123456789"}
    with TestClient(create_app(controller=ctl, keys=keys, settings=ctl.settings)) as client:
        cursor = str(tr_rows[len(tr_rows) // 2][2])  # the creation number of the trial half-way: a page there
        cases = {
            "admin_newest_100": ({"limit": 100}, admin),
            "feedback_key_own_newest_100": ({"limit": 100}, fb),
            "feedback_key_own_pending_100": ({"limit": 100, "state": "pending"}, fb),
            "admin_deep_page_100": ({"limit": 100, "after": cursor}, admin),
        }
        out["trials_listing"] = {}
        for name, (params_, headers) in cases.items():
            def call(params_=params_, headers=headers):
                r = client.get("/v1/trials", params=params_, headers=headers)
                assert r.status_code == 200 and r.json()["trials"], r.text
            _timed(call, 3)  # warm-up
            out["trials_listing"][name] = _summary(_timed(call, args.repeats))
        out["dashboard_admin"] = _summary(_timed(lambda: client.get("/v1/dashboard", headers=admin), 3))
    return out


def _study_id(store) -> int:
    import sqlalchemy as sa

    from autorag_hp.storage.schema import studies_t

    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(studies_t.c.id).where(studies_t.c.name == STUDY)).scalar_one())


class _FreshPostgres:
    """A database of its own on the server of ``url`` for one measurement, dropped on exit."""

    def __init__(self, url: str):
        self.server = url
        self.name = f"autorag_bench_{uuid.uuid4().hex[:10]}"

    def __enter__(self) -> str:
        import psycopg

        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return self.server.rsplit("/", 1)[0] + "/" + self.name

    def __exit__(self, *exc) -> None:
        import psycopg

        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def machine() -> dict:
    from autorag_hp.generators.capabilities import cpu_fingerprint

    model, flags = "", []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].split()
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "sse4_2")
    return {"cpu_model": model, "cpu_flags": [f for f in wanted if f in flags], "torch": cpu_fingerprint(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "loadavg": list(os.getloadavg())}


def report_markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Restart time and /v1/trials latency against the history's length",
        "",
        f"Command: `{result['command']}`",
        "",
        f"Machine: {m['cpu_model']} ({m['cpus']} CPUs, shared), torch CPU capability {m['torch']['capability']}, "
        f"flags {', '.join(m['cpu_flags'])}; Python {m['python']}; load average {m['loadavg'][0]:.1f} at the start.",
        "Filled in bulk (COPY on PostgreSQL, executemany on SQLite), not through the HTTP service; then "
        f"{result['steady']} asks and reports through the service's tuner. Latencies: median of "
        f"{result['repeats']} requests through the app in process (FastAPI TestClient).",
        "",
        "| backend | events | trials | restart before (full fold) | restart after (snapshot + tail) | "
        "/v1/trials before (all trials read) | /v1/trials after: admin / own / own pending / deep page | "
        "trial_page alone: newest / own pending |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for backend, rows in result["results"].items():
        for r in rows:
            before = r.get("restart_full_fold", {}).get("median_ms")
            old = r.get("trials_old_listing", {}).get("median_ms")
            tl = r["trials_listing"]
            after = " / ".join(f"{tl[k]['median_ms']:.1f}" for k in ("admin_newest_100", "feedback_key_own_newest_100",
                                                                      "feedback_key_own_pending_100", "admin_deep_page_100"))
            lines.append(f"| {backend} | {r['events']:,} | {r['trials']:,} | "
                         f"{'-' if before is None else f'{before / 1e3:.2f} s'} | "
                         f"{r['restart_from_snapshot']['median_ms'] / 1e3:.3f} s | "
                         f"{'-' if old is None else f'{old:,.0f} ms'} | {after} ms | "
                         f"{r['trial_page_storage']['newest_100']['median_ms']:.2f} / "
                         f"{r['trial_page_storage']['owner_pending_100']['median_ms']:.2f} ms |")
    lines += ["", "At 1k events a client has only a few pending trials (about 6), so that page is shorter than 100 rows.",
              "", "An ask+report pair through the service's tuner after the fill (median / max; the max includes the one "
              "that carried a snapshot, one per 1,000 events): " + "; ".join(
                  f"{b} {r['events']:,}: {r['steady_suggest_report']['median_ms']:.1f} / "
                  f"{r['steady_suggest_report']['max_ms']:.1f} ms (snapshot {r['snapshot']['bytes'] / 1e3:,.0f} kB)"
                  for b, rows in result["results"].items() for r in rows) + ".",
              "", "Targets: restart at 1M events <= 2 s; /v1/trials at 1M within 2x of 1k:"]
    for backend, rows in result["results"].items():
        first, last = rows[0], rows[-1]
        restart = last["restart_from_snapshot"]["median_ms"] / 1e3
        ratios = {k: last["trials_listing"][k]["median_ms"] / first["trials_listing"][k]["median_ms"]
                  for k in first["trials_listing"]}
        lines.append(f"- {backend}: restart {restart:.3f} s at {last['events']:,} events "
                     f"({'met' if restart <= 2 else 'NOT met'}); listing ratio {last['events']:,} / {first['events']:,}: "
                     + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
                     + f" ({'met' if max(ratios.values()) <= 2 else 'NOT met'})")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from autorag_hp.rag import load_pipeline
    from autorag_hp.service.controller import Controller

    sizes = [int(s) for s in args.sizes.split(",")]
    backends = [b.strip() for b in args.backends.split(",")]
    pipeline = load_pipeline("python_docs_faq", generator="extractive")
    probe = Controller(_settings(None), _keys(), pipeline=pipeline)  # the service's policy, for the generator
    params = probe.policy.params()
    probe.close()
    t0 = time.perf_counter()
    log = generate(max(sizes), params, args.questions)
    print(f"generated {max(sizes):,} events in {time.perf_counter() - t0:.1f} s", flush=True)
    result = {"command": "autorag-hp bench-history " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k in ("sizes", "backends", "questions",
                                                                              "steady", "repeats", "old_max")),
              "machine": machine(), "steady": args.steady, "repeats": args.repeats, "results": {}}
    tmp = Path(tempfile.mkdtemp(prefix="autorag-history-"))
    for backend in backends:
        rows = result["results"].setdefault(backend, [])
        for size in sizes:
            if backend == "sqlite":
                path = tmp / f"h{size}.db"
                rows.append(measure(f"sqlite:///{path}", size, log, pipeline, args))
                for suffix in ("", "-wal", "-shm"):
                    Path(str(path) + suffix).unlink(missing_ok=True)
            else:
                with _FreshPostgres(args.pg) as url:
                    rows.append(measure(url, size, log, pipeline, args))
            print(backend, json.dumps(rows[-1]), flush=True)
    result["machine"]["loadavg_end"] = list(os.getloadavg())
    text = report_markdown(result)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "history.json").write_text(json.dumps(result, indent=1) + "\n")
        (args.out / "history.md").write_text(text)
    return 0
