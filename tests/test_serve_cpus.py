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
