"""``autorag-hp loadtest --mode kill | pg-restart``: fault runs against real replicas, and the audit that every
feedback a client saw acknowledged is stored exactly once (the load mode and the entry are in
:mod:`autorag_hp.commands.loadtest`)."""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import time
from pathlib import Path
from typing import Any

from autorag_hp.service.process import LOAD_SPACE, Cluster, questions


# --- faults ----------------------------------------------------------------------------------------------
class Audit:
    """What clients saw: every feedback that got a 2xx (and ambiguous ones, resolved by a retry)."""

    def __init__(self) -> None:
        self.acked: dict[str, float] = {}
        self.timeline: list[tuple[float, str, int]] = []  # (t, kind, status; 0 = connection error)
        self.asks_ok = 0


async def _fault_client(c: int, urls: list[str], keys: tuple[str, str], qs: list[Any], audit: Audit,
                        stop_at: list[float], t_zero: float) -> None:
    import httpx

    ask_key, fb_key = keys
    rng = random.Random(c)
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=2.0)) as http:
        i = 0
        while time.perf_counter() < stop_at[0]:
            i += 1
            url = urls[(c + i) % len(urls)]
            try:
                r = await http.post(url + "/v1/ask", json={"question": qs[(c * 31 + i) % len(qs)].question},
                                    headers={"Authorization": f"Bearer {ask_key}"})
                code = r.status_code
            except httpx.HTTPError:
                code = 0
            audit.timeline.append((time.perf_counter() - t_zero, "ask", code))
            if code != 200:
                await asyncio.sleep(0.05)  # back off a little; the client will try the other replica next
                continue
            audit.asks_ok += 1
            tid = r.json()["trial_id"]
            value = round(rng.uniform(-1, 1), 4)
            for attempt in range(40):  # retry (same value) on any replica until the outcome is known
                fb_url = urls[(c + i + 1 + attempt) % len(urls)]
                try:
                    r = await http.post(fb_url + "/v1/feedback", json={"trial_id": tid, "reward": value},
                                        headers={"Authorization": f"Bearer {fb_key}"})
                    code = r.status_code
                except httpx.HTTPError:
                    code = 0
                audit.timeline.append((time.perf_counter() - t_zero, "feedback", code))
                if code == 200:
                    audit.acked[tid.split(".")[0]] = value
                    break
                if code == 409 and attempt > 0:  # an earlier attempt was committed though its answer was lost
                    audit.acked[tid.split(".")[0]] = value
                    break
                if code not in (0, 502, 503):
                    break
                await asyncio.sleep(0.1)


def _audit_store(storage: str, study: str, audit: Audit) -> dict[str, Any]:
    from autorag_hp.storage import open_storage

    st = open_storage(storage)
    try:
        missing, wrong = [], []
        for tid, value in audit.acked.items():
            try:
                rec = st.trial(study, tid)
            except Exception:  # noqa: BLE001 - report as missing
                missing.append(tid)
                continue
            if rec.state != "reported":
                missing.append(tid)
            elif abs(rec.reward - value) > 1e-9:
                wrong.append(tid)
        stats = st.stats(study)
        reported = st.trials(study, "reported")
        events = st.events(study)
    finally:
        st.close()
    n_report_events = sum(1 for e in events if e.kind == "report")
    return {
        "acked_feedbacks": len(audit.acked), "missing_in_store": len(missing), "wrong_reward": len(wrong),
        "reported_trials_in_store": len(reported), "stats_count": sum(s.count for s in stats.values()),
        "report_events": n_report_events,
        "no_double_count": sum(s.count for s in stats.values()) == len(reported) == n_report_events,
        "every_acked_report_stored": not missing and not wrong,
        "stored_but_unacked": len(reported) - len(audit.acked),
    }


def _summarise_timeline(timeline: list[tuple[float, str, int]], windows: dict[str, tuple[float, float]]) -> dict:
    out = {}
    for name, (lo, hi) in windows.items():
        codes: dict[str, int] = {}
        for t, kind, code in timeline:
            if lo <= t < hi:
                key = f"{kind} {code if code else 'conn-error'}"
                codes[key] = codes.get(key, 0) + 1
        out[name] = dict(sorted(codes.items()))
    return out


def run_kill(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    qs = questions(args.pipeline)
    study = f"kill-{int(time.time())}"
    cluster = Cluster(args.pipeline, args.storage, LOAD_SPACE, study, workdir, max(2, args.replicas)).start()
    audit = Audit()
    victim = cluster.replicas[0]
    events: dict[str, float] = {}
    try:
        async def main() -> None:
            t_zero = time.perf_counter()
            stop_at = [float("inf")]  # set once the victim is back: the run goes on a while after
            keys = (cluster.ask_key, cluster.fb_key)
            tasks = [asyncio.create_task(_fault_client(c, cluster.urls, keys, qs, audit, stop_at, t_zero))
                     for c in range(args.fault_clients)]
            await asyncio.sleep(args.fault_seconds * 0.3)
            events["killed_at_s"] = time.perf_counter() - t_zero
            victim.kill()  # SIGKILL: no shutdown handler, in-flight requests die with it
            await asyncio.sleep(args.fault_seconds * 0.2)
            events["restart_at_s"] = time.perf_counter() - t_zero
            victim.launch()
            await asyncio.to_thread(victim.wait_healthy, 120)
            events["healthy_again_at_s"] = time.perf_counter() - t_zero
            stop_at[0] = time.perf_counter() + args.fault_seconds * 0.3
            await asyncio.gather(*tasks)
            events["end_s"] = time.perf_counter() - t_zero

        asyncio.run(main())
    finally:
        cluster.stop()
    result = {"mode": "kill", "replicas": len(cluster.replicas), "clients": args.fault_clients,
              "seconds": args.fault_seconds, **{k: round(v, 2) for k, v in events.items()},
              "asks_ok": audit.asks_ok,
              "responses": _summarise_timeline(audit.timeline, {
                  "before_kill": (0, events["killed_at_s"]),
                  "victim_down": (events["killed_at_s"], events["healthy_again_at_s"]),
                  "after_restart": (events["healthy_again_at_s"], 1e9)}),
              "audit": _audit_store(args.storage, study, audit)}
    return result


def _pg_ctl(args: argparse.Namespace, action: str) -> None:
    cluster = args.pg_cluster
    if cluster is None:
        ver = sorted(p.name for p in Path("/etc/postgresql").iterdir())[0]
        cluster = f"{ver} main"
    ver, name = cluster.split()
    cmd = ["pg_ctlcluster", "--skip-systemctl-redirect", ver, name, action]
    if action == "stop":
        cmd += ["-m", "fast"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


def run_pg_restart(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    qs = questions(args.pipeline)
    study = f"pgrestart-{int(time.time())}"
    cluster = Cluster(args.pipeline, args.storage, LOAD_SPACE, study, workdir, max(2, args.replicas)).start()
    audit = Audit()
    events: dict[str, float] = {}
    health: list[tuple[float, str, int]] = []
    try:
        async def poll_health(stop_at: list[float], t_zero: float) -> None:
            import httpx

            async with httpx.AsyncClient(timeout=2.0) as http:
                while time.perf_counter() < stop_at[0]:
                    for url in cluster.urls:
                        try:
                            code = (await http.get(url + "/healthz")).status_code
                        except httpx.HTTPError:
                            code = 0
                        health.append((time.perf_counter() - t_zero, "healthz", code))
                    await asyncio.sleep(0.2)

        async def main() -> None:
            t_zero = time.perf_counter()
            stop_at = [float("inf")]  # set once PostgreSQL is back: the run goes on a while after
            keys = (cluster.ask_key, cluster.fb_key)
            tasks = [asyncio.create_task(_fault_client(c, cluster.urls, keys, qs, audit, stop_at, t_zero))
                     for c in range(args.fault_clients)]
            tasks.append(asyncio.create_task(poll_health(stop_at, t_zero)))
            await asyncio.sleep(args.fault_seconds * 0.25)
            events["pg_stop_at_s"] = time.perf_counter() - t_zero
            try:
                await asyncio.to_thread(_pg_ctl, args, "stop")
                events["pg_stopped_at_s"] = time.perf_counter() - t_zero
                await asyncio.sleep(args.down_seconds)
            finally:
                events["pg_start_at_s"] = time.perf_counter() - t_zero
                await asyncio.to_thread(_pg_ctl, args, "start")
                events["pg_started_at_s"] = time.perf_counter() - t_zero
                stop_at[0] = time.perf_counter() + args.fault_seconds * 0.4
            await asyncio.gather(*tasks)

        asyncio.run(main())
    finally:
        _ensure_pg_running(args)
        cluster.stop()
    started = events["pg_started_at_s"]
    first_ok_after = next((t for t, kind, code in sorted(audit.timeline) if t >= started and code == 200), None)
    first_health_after = next((t for t, _, code in sorted(health) if t >= started and code == 200), None)
    down = (events["pg_stopped_at_s"], events["pg_start_at_s"])
    first_ok_cmd = next((t for t, kind, code in sorted(audit.timeline) if t >= down[1] and code == 200), None)
    in_down = [code for t, _, code in audit.timeline if down[0] <= t < down[1]]
    return {
        "mode": "pg-restart", "replicas": len(cluster.replicas), "clients": args.fault_clients,
        "seconds": args.fault_seconds, **{k: round(v, 2) for k, v in events.items()},
        "asks_ok": audit.asks_ok,
        "responses": _summarise_timeline(audit.timeline, {
            "before": (0, events["pg_stop_at_s"]), "stopping": (events["pg_stop_at_s"], down[0]),
            "down": down, "starting": (down[1], started), "after": (started, 1e9)}),
        "healthz": _summarise_timeline(health, {"down": down, "after": (started, 1e9)}),
        "down_answers_all_503": bool(in_down) and all(code == 503 for code in in_down),
        "first_2xx_s_after_start_command": None if first_ok_cmd is None else round(first_ok_cmd - down[1], 3),
        "recovered_first_2xx_s_after_start": None if first_ok_after is None else round(first_ok_after - started, 3),
        "healthz_ok_s_after_start": None if first_health_after is None else round(first_health_after - started, 3),
        "replicas_restarted": False,
        "audit": _audit_store(args.storage, study, audit),
    }


def _ensure_pg_running(args: argparse.Namespace) -> None:
    try:
        _pg_ctl(args, "start")
    except subprocess.CalledProcessError:
        pass  # already running
