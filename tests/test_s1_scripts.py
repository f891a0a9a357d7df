"""The replica-scaling scripts of issue 15 (eval/scripts/s1_scaling.py, s1_device.py): the core layout of the
many-core run and the tables, on result records shaped like ``loadtest --mode load``'s."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "eval" / "scripts"


def _script(name: str):
    sys.path.insert(0, str(SCRIPTS))  # s1_device imports its sibling s1_scaling
    try:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPTS))


def _run(arm: str, replicas: int, k: int, asks_per_s: float) -> dict:
    return {"arm": arm, "replicas": replicas, "round": k, "asks_per_s": asks_per_s, "clients": 64, "load_procs": 4,
            "sequential_breakdown_ms_p50": {"tuner_and_storage": 1.0},
            "cpu_ms_per_ask": {"replicas": 2.5, "postgres": 0.7, "clients": 0.2},
            "cpu_busy_share": 0.25, "machine": {"cpus": 16, "cpu": {"cpu": "test"}},
            "layout": {"replicas": "0-7", "postgres": "8-11", "load": "12-15"}}


def test_the_many_core_layout_gives_each_part_its_own_cores():
    dev = _script("s1_device")
    assert dev.layout(16) == {"replicas": "0-7", "postgres": "8-11", "load": "12-15"}
    assert dev.layout(2) == {"replicas": "0", "postgres": "1", "load": "1"}


def test_the_table_pairs_each_replica_count_with_one_replica_round_by_round():
    dev = _script("s1_device")
    runs = [_run("pin", 1, 1, 300), _run("pin", 2, 1, 570), _run("pin", 4, 1, 1200),
            _run("pin", 1, 2, 310), _run("pin", 2, 2, 651), _run("pin", 4, 2, 1178),
            _run("free", 1, 1, 200), _run("free", 1, 2, 210)]
    text = dev.table(runs)
    assert "| pin | 2 | 570, 651 |" in text and "| pin | 4 | 1200, 1178 |" in text
    # 2/1 per round: 1.90 and 2.10, mean 2.00, t(1 df) = 12.71 x sd 0.1414 / sqrt 2 = 1.27
    assert "| pin, 2 / 1 | 1.90, 2.10 | 2.00 | [0.73, 3.27] |" in text
    assert "| pin, 4 / 1 | 4.00, 3.80 | 3.90 |" in text
    assert "free, 2 / 1" not in text  # no 2-replica run of that arm: no ratio made up
    assert "| 4.00, 4.00 |" in text  # cores busy = share x the machine's 16 cores
    assert "Cores: replicas 0-7, PostgreSQL 8-11, load generator 12-15 (4 processes, 64 clients)." in text


def test_the_two_core_tables_keep_their_committed_numbers():
    scaling = _script("s1_scaling")
    folder = SCRIPTS.parents[1] / "eval" / "results" / "service" / "s1_scaling"
    text = scaling.table(folder)
    assert "| a314271, 2 / 1 | 1.49, 1.44, 1.42, 1.44 | 1.45 | [1.40, 1.49] |" in text  # as its README quotes
