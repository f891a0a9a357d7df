"""``autorag-hp loadtest``: load and fault tests of the service with real replicas on loopback.

    autorag-hp loadtest --mode load        # 32 clients vs 2 replicas, pipeline in retrieval-only mode
    autorag-hp loadtest --mode kill        # kill -9 one replica under load, restart it, audit the store
    autorag-hp loadtest --mode pg-restart  # stop/start PostgreSQL under load: 503 while down, self-recovery
    autorag-hp loadtest --mode all --out eval/results/service

Every mode starts its own replicas (``autorag-hp serve`` processes) on a fresh study of the given storage,
writes a JSON result (and prints a summary). The audit of the fault modes: every feedback that got a 2xx
answer is in the store with its reward, and the store's aggregates count each exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from autorag_hp.service.process import LOAD_SPACE, Cluster


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=("load", "kill", "pg-restart", "all"), default="load")
    p.add_argument("--storage", default="postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument("--pipeline", default="python_docs_faq", help="pipeline spec: a bundled name or a YAML file")
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--clients", type=int, default=32, help="concurrent clients (load mode)")
    p.add_argument("--requests", type=int, default=2000, help="asks in the load run (each followed by feedback)")
    p.add_argument("--baseline", type=int, default=300, help="direct pipeline calls / sequential asks to compare")
    p.add_argument("--pin", action="store_true",
                   help="pin replica i to the i-th of the replicas' cores alone (serve --cpus), load mode")
    p.add_argument("--replica-cpus", default=None, metavar="LIST",
                   help="the CPUs the replicas run on, e.g. '0-7' (default: all of this process's), load mode")
    p.add_argument("--load-cpus", default=None, metavar="LIST",
                   help="the CPUs the load generator runs on once the replicas are up, e.g. '12-15', load mode")
    p.add_argument("--load-procs", type=int, default=1,
                   help="processes of the load generator (load mode); their CPU is reported as 'clients'")
    p.add_argument("--fault-clients", type=int, default=16)
    p.add_argument("--fault-seconds", type=float, default=14.0, help="length of each fault run")
    p.add_argument("--down-seconds", type=float, default=3.0, help="how long PostgreSQL stays down")
    p.add_argument("--pg-cluster", default=None, help="'VERSION NAME' for pg_ctlcluster (default: the first one)")
    p.add_argument("--out", default="eval/results/service", help="folder for the JSON results")
    p.add_argument("--seed", type=int, default=0)


# --- helpers ---------------------------------------------------------------------------------------------
def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))]


def ms(x: float | None) -> float | None:
    return None if x is None else round(1e3 * x, 3)


# --- load ------------------------------------------------------------------------------------------------
def cpu_seconds(pids: list[int]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the replicas (``pids``) and every PostgreSQL
    server process: where the machine's cores go during a load (Linux ``/proc``)."""
    tick = os.sysconf("SC_CLK_TCK")

    def of(pid: int | str) -> tuple[str, float]:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return "", 0.0
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        return name, (int(rest[11]) + int(rest[12])) / tick  # utime, stime

    out = {"replicas": sum(of(p)[1] for p in pids),
           "postgres": sum(sec for name, sec in map(of, (d for d in os.listdir("/proc") if d.isdigit()))
                           if name == "postgres")}
    return out


def run_load(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import httpx

    from autorag_hp.commands import loadgen
    from autorag_hp.commands.serve import parse_cpus
    from autorag_hp.rag import load_pipeline

    replica_cpus = parse_cpus(args.replica_cpus) if args.replica_cpus else None
    load_cpus = parse_cpus(args.load_cpus) if args.load_cpus else None
    cores = _cores()  # before this process narrows itself to the load generator's CPUs
    pipe = load_pipeline(args.pipeline, generator="extractive")
    qs = pipe.questions()
    study = f"load-{int(time.time())}"
    cluster = Cluster(args.pipeline, args.storage, LOAD_SPACE, study, workdir, args.replicas, pin=args.pin,
                      cores=replica_cpus).start()
    affinity = os.sched_getaffinity(0) if load_cpus else None  # given back at the end
    try:
        if load_cpus:  # the worker processes of --load-procs are forked from here and inherit it
            os.sched_setaffinity(0, load_cpus)
        # direct: the same pipeline, the same configurations, called in-process (indexes warm)
        cfgs = [{"embedding": "bm25", "chunk_size": c, "top_k": k} for c in LOAD_SPACE["chunk_size"] for k in LOAD_SPACE["top_k"]]
        for cfg in cfgs:
            pipe.run(qs[0].question, cfg)
        direct = []
        for i in range(args.baseline):
            t0 = time.perf_counter()
            pipe.run(qs[i % len(qs)].question, cfgs[i % len(cfgs)])
            direct.append(time.perf_counter() - t0)
        # warm the replicas (indexes per chunk size), then one client in sequence: the per-request overhead
        pairs = [(q.question, q.sources[0] if q.sources else None) for q in qs]
        keys = (cluster.urls, cluster.ask_key, cluster.fb_key, pairs)
        loadgen.run(*keys, 60, 4, args.seed)
        seq = loadgen.run(*keys, args.baseline, 1, args.seed)
        # the load: N asks (+ N feedbacks) from C concurrent clients
        pids = [r.proc.pid for r in cluster.replicas if r.proc is not None]
        cpu0 = cpu_seconds(pids)
        load = loadgen.run(*keys, args.requests, args.clients, args.seed, procs=args.load_procs)
        cpu1 = cpu_seconds(pids)
        cpu0["clients"], cpu1["clients"] = 0.0, load["cpu_s"]
        dashes = [httpx.get(u + "/v1/dashboard", headers={"Authorization": f"Bearer {cluster.fb_key}"},
                            timeout=60).json() for u in cluster.urls]
        dash = dashes[0]
    finally:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
        cluster.stop()
    n_ok = load["status"].get("ask 200", 0)
    n_req = len(load["lat_ask"]) + len(load["lat_fb"])
    d50, s50 = pct(direct, 50), pct(seq["lat_ask"], 50)
    out = {
        "mode": "load", "storage": args.storage.split("@")[-1], "replicas": args.replicas, "clients": args.clients,
        "pinned": args.pin, "load_procs": args.load_procs,
        "cpus": {"replicas": args.replica_cpus, "load_generator": args.load_cpus, "machine": cores},
        "pipeline": "python_docs_faq, generator=extractive (retrieval only: the answer is the best passage), bm25",
        "space": LOAD_SPACE, "asks": len(load["lat_ask"]), "feedbacks": len(load["lat_fb"]), "status": load["status"],
        "wall_s": round(load["wall_s"], 3),
        "requests_per_s": round(n_req / load["wall_s"], 1),
        "asks_per_s": round(n_ok / load["wall_s"], 1),
        "ask_latency_ms": {"p50": ms(pct(load["lat_ask"], 50)), "p99": ms(pct(load["lat_ask"], 99)),
                           "max": ms(max(load["lat_ask"]))},
        "feedback_latency_ms": {"p50": ms(pct(load["lat_fb"], 50)), "p99": ms(pct(load["lat_fb"], 99))},
        "direct_pipeline_ms": {"p50": ms(d50), "p99": ms(pct(direct, 99)), "n": len(direct)},
        "sequential_ask_ms": {"p50": ms(s50), "p99": ms(pct(seq["lat_ask"], 99)), "n": len(seq["lat_ask"])},
        "sequential_feedback_ms": {"p50": ms(pct(seq["lat_fb"], 50)), "p99": ms(pct(seq["lat_fb"], 99))},
        "overhead_per_ask_ms": ms(s50 - d50) if s50 is not None and d50 is not None else None,
        "sequential_breakdown_ms_p50": {
            "tuner_and_storage": ms(pct(seq["server_tuner"], 50)),
            "pipeline_in_service": ms(pct(seq["server_pipeline"], 50)),
            "http_json_auth_and_client": ms(s50 - pct(seq["server_tuner"], 50) - pct(seq["server_pipeline"], 50))
            if seq["server_tuner"] else None},
        "overhead_ratio": round(s50 / d50, 2) if s50 and d50 else None,
        "server_side_ms_under_load": {"tuner_and_storage_p50": ms(pct(load["server_tuner"], 50)),
                                      "pipeline_p50": ms(pct(load["server_pipeline"], 50))},
        "decisions_folded": dash.get("decisions"), "explore_share": dash.get("explore_share"),
        "lock_held_per_replica": [d.get("lock_held") for d in dashes],
        # CPU per ask (+ its feedback), by component: with every core busy, cores / total is the ceiling on asks/s
        "cpu_ms_per_ask": {k: ms((cpu1[k] - cpu0[k]) / max(n_ok, 1)) for k in cpu0},
        "cpu_busy_share": round(sum(cpu1[k] - cpu0[k] for k in cpu0) / (load["wall_s"] * cores), 3),
        "machine": machine(),
    }
    return out


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def machine() -> dict[str, Any]:
    import platform

    try:
        load1 = os.getloadavg()[0]
    except OSError:
        load1 = None
    from autorag_hp.evaluation.cpu_kinds import this_cpu

    return {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_1m_at_end": load1,
            "cpu": this_cpu()}  # model, torch capability and flags: every speed figure names its CPU


# --- entry -----------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    modes = ["load", "kill", "pg-restart"] if args.mode == "all" else [args.mode]
    from autorag_hp.commands.loadtest_faults import run_kill, run_pg_restart

    runners = {"load": run_load, "kill": run_kill, "pg-restart": run_pg_restart}
    rc = 0
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix=f"autorag-{mode}-") as tmp:
            print(f"== {mode} ==", file=sys.stderr, flush=True)
            try:
                res = runners[mode](args, Path(tmp))
            except Exception:
                for log in sorted(Path(tmp).glob("*.log")):
                    print(f"--- {log.name} ---\n{log.read_text()[-3000:]}", file=sys.stderr)
                raise
        res["command"] = "autorag-hp loadtest " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["loadtest"] else [])
        res["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        path = out / f"{mode.replace('-', '_')}.json"
        path.write_text(json.dumps(res, indent=2) + "\n")
        print(json.dumps(res, indent=2))
        print(f"wrote {path}", file=sys.stderr)
        audit = res.get("audit")
        if audit and not (audit["every_acked_report_stored"] and audit["no_double_count"]):
            rc = 1
    return rc
