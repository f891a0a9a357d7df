"""Tables of the issue 15 §1 before/after runs in eval/results/service/s1_after/ (see its README for the runs).

    python eval/scripts/s1_summary.py eval/results/service/s1_after
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _j(d: Path, name: str) -> dict:
    return json.loads((d / name).read_text())


def main(folder: str) -> None:
    d = Path(folder)
    print("| storage | replicas | code | asks/s (run 1, run 2) | tuner+storage in an ask, one client, p50 ms | "
          "same under 32 clients, p50 ms | HTTP overhead per ask, one client, ms | write statement or lock, p50 / p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for st in ("pg", "sqlite"):
        for r in (1, 2):
            for code in ("before", "after"):
                runs = [_j(d, f"load_{code}_{st}_{r}_r{k}.json") for k in (1, 2)]
                held = [h for x in runs for h in x["lock_held_per_replica"] if h]
                print(f"| {'PostgreSQL' if st == 'pg' else 'SQLite'} | {r} | {code} | "
                      + ", ".join(f"{x['asks_per_s']:.1f}" for x in runs) + " | "
                      + ", ".join(f"{x['sequential_breakdown_ms_p50']['tuner_and_storage']:.2f}" for x in runs) + " | "
                      + ", ".join(f"{x['server_side_ms_under_load']['tuner_and_storage_p50']:.1f}" for x in runs) + " | "
                      + ", ".join(f"{x['overhead_per_ask_ms']:.1f}" for x in runs) + " | "
                      + ", ".join(f"{h['p50_ms']:.2f} / {h['p99_ms']:.0f}" for h in held) + " |")
    print()
    print("| storage | code | suggest + report p50 (run 1, run 2) ms | p99 ms | write statement or lock p50 ms |")
    print("|---|---|---|---|---|")
    for st in ("pg", "sqlite"):
        for code in ("before", "after"):
            runs = [_j(d, f"ovh_{code}_{st}_r{k}.json") for k in (1, 2)]
            print(f"| {'PostgreSQL' if st == 'pg' else 'SQLite'} | {code} | "
                  + ", ".join(f"{x['tuner_suggest_plus_report_ms']['p50']:.2f}" for x in runs) + " | "
                  + ", ".join(f"{x['tuner_suggest_plus_report_ms']['p99']:.1f}" for x in runs) + " | "
                  + ", ".join(f"{x['lock_held']['p50_ms']:.2f}" for x in runs) + " |")
    print()
    print("| processes x 8 threads | code | asks/s (run 1, run 2) | write statement or lock p50 ms |")
    print("|---|---|---|---|")
    for p in (1, 2):
        for code in ("before", "after"):
            runs = [_j(d, f"thr_{code}_pg_{p}_r{k}.json") for k in (1, 2)]
            print(f"| {p} | {code} | " + ", ".join(f"{x['asks_per_s']:.0f}" for x in runs) + " | "
                  + ", ".join(f"{w['lock_held']['p50_ms']:.1f}" for x in runs for w in x["per_process"]) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "eval/results/service/s1_after")
