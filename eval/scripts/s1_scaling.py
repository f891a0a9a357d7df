"""Replica scaling of the service (issue 15 §1): 1 vs 2 replicas on PostgreSQL, several code revisions, in
alternating rounds so that machine drift hits every arm alike; then the table.

    python eval/scripts/s1_scaling.py --arms e96ad82 HEAD HEAD:pin --rounds 3 --out eval/results/service/s1_scaling
    python eval/scripts/s1_scaling.py --table eval/results/service/s1_scaling

An arm is a revision, with ``:pin`` for ``loadtest --pin`` (replica i on core i). Each revision is checked out
in a temporary worktree and its own ``autorag-hp loadtest --mode load`` runs there (the load generator is the
same in every revision this is meant for: commit e96ad82's and later).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_rounds(arms: list[str], rounds: int, out: Path, requests: int, clients: int, storage: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    revs = {}
    for arm in arms:
        rev, _, pin = arm.partition(":")
        sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", rev], check=True, capture_output=True,
                             text=True).stdout.strip()
        revs[sha + (":pin" if pin else "")] = sha
    arms = list(revs)
    with tempfile.TemporaryDirectory(prefix="s1-scaling-") as tmp:
        trees = {}
        for rev in set(revs.values()):
            trees[rev] = Path(tmp) / rev
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(trees[rev]), rev], check=True,
                           capture_output=True)
        try:
            for k in range(1, rounds + 1):
                order = arms if k % 2 else arms[::-1]
                for arm in order:
                    tree = trees[revs[arm]]
                    for replicas in ((1, 2) if k % 2 else (2, 1)):
                        dest = Path(tmp) / f"{arm.replace(':', '_')}_{replicas}_{k}"
                        cmd = [sys.executable, "-m", "autorag_hp.cli", "loadtest", "--mode", "load", "--storage", storage,
                               "--replicas", str(replicas), "--clients", str(clients), "--requests", str(requests),
                               "--baseline", "100", "--out", str(dest), *(["--pin"] if arm.endswith(":pin") else [])]
                        env = {**os.environ, "PYTHONPATH": str(tree)}
                        subprocess.run(cmd, cwd=tree, env=env, check=True, capture_output=True, timeout=600)
                        res = json.loads((dest / "load.json").read_text())
                        res["revision"] = arm
                        (out / f"load_{arm.replace(':', '_')}_{replicas}_r{k}.json").write_text(json.dumps(res, indent=2) + "\n")
                        print(f"round {k} {arm} {replicas} replica(s): {res['asks_per_s']} asks/s", flush=True)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)


def table(folder: Path) -> str:
    runs: dict[tuple[str, int, int], dict] = {}
    for f in sorted(folder.glob("load_*_r*.json")):
        d = json.loads(f.read_text())
        k = int(f.stem.rsplit("_r", 1)[1])
        runs[(d["revision"], d["replicas"], k)] = d
    return table_of(runs)


def table_of(runs: dict[tuple[str, int, int], dict], arm: str = "revision") -> str:
    """The tables of ``loadtest --mode load`` results keyed by (arm, replicas, round): per arm and replica
    count the rounds' throughput, overhead, CPU per ask and busy cores; then each replica count's throughput
    over one replica's, round by round (the rounds pair them), with a t interval over rounds."""
    lines = [f"| {arm} | replicas | asks/s per round | tuner+storage in an ask, one client, p50 ms | "
             "CPU ms per ask+feedback: replicas / PostgreSQL / load generator | cores busy |",
             "|---|---|---|---|---|---|"]
    ratios = {}
    for rev in dict.fromkeys(r for r, _, _ in sorted(runs, key=lambda x: (x[2], x[0]))):
        counts = sorted({n for r, n, _ in runs if r == rev})
        for rep in counts:
            rs = [runs[key] for key in sorted(runs) if key[0] == rev and key[1] == rep]
            cpu = [r["cpu_ms_per_ask"] for r in rs]
            lines.append(
                f"| {rev} | {rep} | " + ", ".join(f"{r['asks_per_s']:.0f}" for r in rs) + " | "
                + ", ".join(f"{r['sequential_breakdown_ms_p50']['tuner_and_storage']:.2f}" for r in rs) + " | "
                + f"{statistics.median(c['replicas'] for c in cpu):.2f} / {statistics.median(c['postgres'] for c in cpu):.2f}"
                + f" / {statistics.median(c['clients'] for c in cpu):.2f} | "
                + ", ".join(f"{r['machine']['cpus'] * r['cpu_busy_share']:.2f}" for r in rs) + " |")
        rounds = sorted({k for r, _, k in runs if r == rev})
        for rep in counts[1:] if counts[:1] == [1] else []:
            ratios[(rev, rep)] = [runs[(rev, rep, k)]["asks_per_s"] / runs[(rev, 1, k)]["asks_per_s"] for k in rounds
                                  if (rev, rep, k) in runs and (rev, 1, k) in runs]
    lines += ["", f"| {arm} | N replicas / 1 replica, per round | mean | 95 % interval (t, over rounds) |",
              "|---|---|---|---|"]
    for (rev, rep), rs in ratios.items():
        m = statistics.fmean(rs)
        half = _t95(len(rs) - 1) * statistics.stdev(rs) / math.sqrt(len(rs)) if len(rs) > 1 else float("nan")
        lines.append(f"| {rev}, {rep} / 1 | " + ", ".join(f"{r:.2f}" for r in rs)
                     + f" | {m:.2f} | [{m - half:.2f}, {m + half:.2f}] |")
    cpu = next(iter(runs.values()))["machine"]["cpu"]
    lines += ["", f"CPU: {cpu}"]
    return "\n".join(lines)


def _t95(df: int) -> float:
    return {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}.get(df, 1.96 + 2.5 / df)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arms", nargs="+", help="revisions, REV:pin for pinned replicas")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--requests", type=int, default=1500)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--storage", default="postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument("--out", default="eval/results/service/s1_scaling")
    p.add_argument("--table", default=None, help="only print the table of this folder's runs")
    a = p.parse_args()
    if a.table:
        print(table(Path(a.table)))
        return
    run_rounds(a.arms, a.rounds, Path(a.out), a.requests, a.clients, a.storage)
    print(table(Path(a.out)))


if __name__ == "__main__":
    main()
