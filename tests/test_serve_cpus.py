"""``autorag-hp serve --cpus``: pinning a replica to cores, and a clear refusal of CPUs it cannot have."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from autorag_hp.commands.serve import parse_cpus


def test_lists_and_ranges_of_cpus():
    allowed = sorted(os.sched_getaffinity(0))
    first = allowed[0]
    assert parse_cpus(str(first)) == {first}
    assert parse_cpus(f"{first}-{first}") == {first}
    assert parse_cpus(",".join(map(str, allowed))) == set(allowed)


@pytest.mark.parametrize("text, message", [("x", "give CPU numbers and ranges"), ("0-", "give CPU numbers"),
                                           ("4096", "this process may use CPUs"), ("3-1", "this process may use")])
def test_bad_cpu_lists_are_refused_with_what_to_give(text, message):
    with pytest.raises(ValueError, match=message):
        parse_cpus(text)


def test_serve_refuses_a_cpu_it_cannot_run_on_before_starting():
    out = subprocess.run([sys.executable, "-m", "autorag_hp.cli", "serve", "--insecure-no-auth", "--cpus", "4096",
                          "--storage", "sqlite:///:memory:"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--cpus '4096': this process may use CPUs" in out.stderr


def _allowed_cpus(pid: int) -> set[int]:
    line = next(x for x in open(f"/proc/{pid}/status") if x.startswith("Cpus_allowed_list:"))
    return parse_cpus(line.split(":", 1)[1].strip())


def test_cluster_runs_its_replicas_on_the_cpus_it_is_given(tmp_path):
    pytest.importorskip("fastapi")
    from autorag_hp.service.process import LOAD_SPACE, Cluster

    allowed = sorted(os.sched_getaffinity(0))
    mine = {allowed[-1]}
    pinned = Cluster("python_docs_faq", "sqlite:///x.db", LOAD_SPACE, "s", tmp_path, 3, pin=True, cores=set(allowed))
    assert [r.args[r.args.index("--cpus") + 1] for r in pinned.replicas] == [
        str(allowed[i % len(allowed)]) for i in range(3)]
    assert all("--cpus" not in r.args for r in Cluster("python_docs_faq", "sqlite:///x.db", LOAD_SPACE, "s",
                                                       tmp_path, 2).replicas)  # no cores given: inherit
    cluster = Cluster("python_docs_faq", f"sqlite:///{tmp_path / 'c.db'}", LOAD_SPACE, "s", tmp_path, 1, cores=mine)
    cluster.start()
    try:
        assert _allowed_cpus(cluster.replicas[0].proc.pid) == mine
    finally:
        cluster.stop()


def test_load_run_puts_the_load_generator_on_its_cpus_and_gives_them_back(tmp_path):
    pytest.importorskip("fastapi")
    import argparse

    from autorag_hp.commands.loadtest import add_arguments, run_load

    allowed = sorted(os.sched_getaffinity(0))
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--storage", f"sqlite:///{tmp_path / 'l.db'}", "--replicas", "1", "--clients", "4",
                         "--requests", "40", "--baseline", "5", "--replica-cpus", str(allowed[0]),
                         "--load-cpus", str(allowed[-1])])
    res = run_load(args, tmp_path)
    assert res["status"] == {"ask 200": 40, "feedback 200": 40}
    assert res["cpus"] == {"replicas": str(allowed[0]), "load_generator": str(allowed[-1]), "machine": len(allowed)}
    assert os.sched_getaffinity(0) == set(allowed)  # this process has all its CPUs back
