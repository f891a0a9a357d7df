"""Fault runs of the service (slow): kill -9 a replica under load, restart PostgreSQL under load.

Both use ``autorag-hp loadtest``'s runners on real replicas and the local PostgreSQL, then audit the store:
every feedback that got a 2xx is stored with its reward, and nothing is counted twice. The PostgreSQL restart
stops the shared local server for a few seconds, so it also needs ``AUTORAG_HP_TEST_PG_RESTART=1``.
"""

from __future__ import annotations

import argparse
import os

import pytest

pytest.importorskip("fastapi")
pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _args(pg_url: str, **kw) -> argparse.Namespace:
    from autorag_hp.commands.loadtest import add_arguments

    p = argparse.ArgumentParser()
    add_arguments(p)
    ns = p.parse_args(["--storage", pg_url])
    for k, v in kw.items():
        setattr(ns, k, v)
    return ns


def test_kill9_one_replica_under_load_loses_no_acknowledged_report(pg_url, tmp_path):
    from autorag_hp.commands.loadtest_faults import run_kill

    res = run_kill(_args(pg_url, fault_seconds=8.0, fault_clients=6), tmp_path)
    audit = res["audit"]
    assert audit["acked_feedbacks"] > 20
    assert audit["every_acked_report_stored"] and audit["missing_in_store"] == 0 and audit["wrong_reward"] == 0
    assert audit["no_double_count"]
    assert res["responses"]["victim_down"].get("ask 200", 0) > 0  # the surviving replica kept answering
    assert res["responses"]["after_restart"].get("ask 200", 0) > 0


@pytest.mark.skipif(os.environ.get("AUTORAG_HP_TEST_PG_RESTART") != "1",
                    reason="restarts the shared local PostgreSQL: set AUTORAG_HP_TEST_PG_RESTART=1 to run it")
def test_postgres_restart_under_load_answers_503_then_recovers(pg_url, tmp_path):
    from autorag_hp.commands.loadtest_faults import run_pg_restart

    res = run_pg_restart(_args(pg_url, fault_seconds=8.0, fault_clients=6, down_seconds=2.0), tmp_path)
    assert res["down_answers_all_503"]
    assert res["recovered_first_2xx_s_after_start"] is not None and res["recovered_first_2xx_s_after_start"] < 10
    assert res["healthz"]["down"].get("healthz 503", 0) > 0
    assert res["audit"]["every_acked_report_stored"] and res["audit"]["no_double_count"]
