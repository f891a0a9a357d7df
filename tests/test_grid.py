"""Grid runner: completeness, work sharing, resume after SIGKILL, worker pools, exactly-once on SQLite and
PostgreSQL through Optuna, exports, and a clear error for a table from a different space."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from autorag_hp.evaluation.grid import run_grid
from autorag_hp.evaluation.table import GridTable, TableMismatchError
from autorag_hp.evaluation.table_export import read_export
from autorag_hp.space import SearchSpace
from autorag_hp.types import QAItem

ROOT = Path(__file__).resolve().parents[1]
TOY = str(ROOT / "tests" / "test_grid_toy.py") + ":make_pipeline"
CELLS = 32 * 8
PG = "postgresql://postgres@127.0.0.1:5432/test"
QUIET = {"progress": False, "log": lambda s: None}
# what the worker-process tests compute per cell: their checks are about who computes what, and ROUGE-L's
# rouge_score imports nltk (and scipy.stats, sklearn: ~1.5 s) in every process; the in-process tests keep every metric
LIGHT = ["token_f1", "mrr"]


def _exactly_once(table: GridTable, expected: int) -> None:
    log = table.computation_log()
    keys = Counter((c, q) for c, q, _ in log)
    assert table.count() == expected
    assert len(keys) == expected, "every cell computed"
    dup = [k for k, n in keys.items() if n > 1]
    assert not dup, f"cells computed more than once: {dup[:5]}"


def test_single_process_grid_is_complete_and_shares_work(tmp_path):
    out = tmp_path / "grid.sqlite"
    s = run_grid(TOY, out, **QUIET)
    assert s["complete"] and s["rows"] == CELLS and s["computed_now"] == CELLS
    # identical temperature-0 prompts (e.g. chunk_overlap 0 vs 10 with one short chunk) are answered once
    assert s["answers_reused_total"] > 0
    assert s["llm_calls_total"] + s["answers_reused_total"] == CELLS
    t = GridTable(str(out))
    rows = list(t.rows())
    r = rows[0]
    assert set(r["metrics"]) >= {"exact_match", "token_f1", "rouge_l", "mrr", "source_recall@1", "context_tokens"}
    assert r["answer"] and r["prompt_tokens"] > 0 and r["latency_s"] >= 0 and r["contexts"]
    assert len({x["config_id"] for x in rows}) == 32 and len({x["question_id"] for x in rows}) == 8
    # configurations differ in quality: the grid is informative
    by_cfg: dict[str, list[float]] = {}
    for x in rows:
        by_cfg.setdefault(x["config_id"], []).append(x["metrics"]["mrr"])
    means = sorted(sum(v) / len(v) for v in by_cfg.values())
    assert means[-1] > means[0]
    # a second run computes nothing
    s2 = run_grid(TOY, out, **QUIET)
    assert s2["computed_now"] == 0 and s2["llm_calls_now"] == 0 and s2["rows"] == CELLS
    _exactly_once(t, CELLS)


def test_table_from_a_different_space_is_rejected(tmp_path):
    out = tmp_path / "grid.sqlite"
    run_grid(TOY, out, questions=2, **QUIET)
    other = SearchSpace({"chunk_size": [40], "chunk_overlap": [0], "top_k": [1], "prompt": ["short"],
                         "temperature": [0.0]})
    with pytest.raises(TableMismatchError, match="different search space"):
        run_grid(TOY, out, space=other, questions=2, **QUIET)
    with pytest.raises(TableMismatchError, match="different search space"):
        GridTable.open(out, space=other)
    # the same space and the exports carry the fingerprint
    for name in ("g.jsonl.gz", "g.csv.gz", "g.sqlite"):
        GridTable(str(out)).export(tmp_path / name)
        rows, meta = read_export(tmp_path / name)
        assert len(rows) == 2 * 32 and meta["space_fingerprint"]
        assert {r["config_id"] for r in rows} == {c.id for c in SearchSpace(meta["space"]).configs()}
        assert isinstance(rows[0]["metrics"]["token_f1"], float)
        assert rows[0]["reference"] and isinstance(rows[0]["prompt_tokens"], int)
        with pytest.raises(TableMismatchError, match="different search space"):
            read_export(tmp_path / name, space=other)


def test_unknown_metric_fails_before_any_work(tmp_path):
    from autorag_hp.evaluation.metrics import UnknownMetricError

    with pytest.raises(UnknownMetricError, match="no_such_metric"):
        run_grid(TOY, tmp_path / "g.sqlite", metrics=["token_f1", "no_such_metric"], **QUIET)
    assert not (tmp_path / "g.sqlite").exists() or GridTable(str(tmp_path / "g.sqlite")).count() == 0


def test_local_pool_matches_single_process(tmp_path):
    s1 = run_grid(TOY, tmp_path / "a.sqlite", questions=4, **QUIET)
    s2 = run_grid(TOY, tmp_path / "b.sqlite", questions=4, workers=2, **QUIET)
    assert s1["rows"] == s2["rows"] == 32 * 4
    a = {(r["config_id"], r["question_id"]): (r["answer"], r["metrics"]) for r in GridTable(str(tmp_path / "a.sqlite")).rows()}
    b_table = GridTable(str(tmp_path / "b.sqlite"))
    b = {(r["config_id"], r["question_id"]): (r["answer"], r["metrics"]) for r in b_table.rows()}
    assert a.keys() == b.keys()
    for k in a:  # same answers and metrics (latency excluded) whichever process computed them
        assert a[k][0] == b[k][0]
        assert {m: v for m, v in a[k][1].items() if m != "latency_s"} == {
            m: v for m, v in b[k][1].items() if m != "latency_s"}
    _exactly_once(b_table, 32 * 4)
    assert len({w for _, _, w in b_table.computation_log()}) == 2  # both workers did work


def _cli(out: Path, *extra: str, delay: str = "0.03") -> subprocess.Popen:
    env = {**os.environ, "TOY_DELAY": delay, "RAGAS_DO_NOT_TRACK": "true"}
    return subprocess.Popen(
        [sys.executable, "-m", "autorag_hp.cli", "grid", "--pipeline", TOY, "--out", str(out), "--no-progress",
         "--metrics", ",".join(LIGHT), *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )


def _kill_when(table: GridTable, proc: subprocess.Popen, at_least: int, timeout: float = 60) -> int:
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if table.count() >= at_least:
                break
        except Exception:  # noqa: BLE001 - the table may not exist yet
            pass
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the process and any worker it spawned
    proc.wait()
    return table.count()


def test_resume_after_sigkill(tmp_path):
    out = tmp_path / "grid.sqlite"
    p = _cli(out)
    table = GridTable(str(out))
    n1 = _kill_when(table, p, 40)
    assert p.returncode == -signal.SIGKILL and 40 <= n1 < CELLS
    first = {(r["config_id"], r["question_id"]): r["created_at"] for r in table.rows()}
    p2 = _cli(out, delay="0")
    stdout, stderr = p2.communicate(timeout=120)
    assert p2.returncode == 0, stderr.decode()[-2000:]
    summary = json.loads(stdout)
    assert summary["complete"] and summary["computed_now"] == CELLS - n1
    after = {(r["config_id"], r["question_id"]): r["created_at"] for r in table.rows()}
    assert all(after[k] == v for k, v in first.items())  # nothing computed before was computed again
    _exactly_once(table, CELLS)
    runs = table.totals()
    assert runs["runs"] == 2 and runs["wall_s"] > 0  # the killed run kept the wall time it had recorded


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_optuna_distributed_workers_exactly_once(tmp_path, backend):
    name = f"t_{uuid.uuid4().hex[:10]}"
    url = str(tmp_path / "grid.sqlite") if backend == "sqlite" else PG
    storage = f"sqlite:///{tmp_path / 'optuna.db'}" if backend == "sqlite" else PG
    s = run_grid(TOY, url, table_name=name, questions=4, workers=3, storage=storage, study=name, metrics=LIGHT,
                 **QUIET)
    assert s["complete"] and s["rows"] == 32 * 4
    table = GridTable(url, name)
    _exactly_once(table, 32 * 4)
    assert len({w for _, _, w in table.computation_log()}) >= 2  # the work was spread
    import optuna

    study = optuna.load_study(study_name=name, storage=table.url if backend == "postgresql" else storage)
    units = {t.params["unit"] for t in study.trials if t.state.name == "COMPLETE"}
    assert units == set(range(4 * 8))  # every unit handed out by Optuna's GridSampler


@pytest.mark.postgres
def test_optuna_resume_after_sigkill_on_postgres(tmp_path):
    name = f"t_{uuid.uuid4().hex[:10]}"
    args = ("--table-name", name, "--optuna-storage", PG, "--optuna-study", name, "--workers", "2", "--questions", "4")
    p = _cli(PG, *args)
    table = GridTable(PG, name)
    n1 = _kill_when(table, p, 20)
    assert n1 < 32 * 4
    # killed workers leave RUNNING trials; Optuna's heartbeat fails them and re-enqueues their units
    env = {**os.environ, "TOY_DELAY": "0"}
    code = (
        "import sys; from autorag_hp.evaluation.grid import run_grid; "
        f"s = run_grid({TOY!r}, {PG!r}, table_name={name!r}, questions=4, workers=2, storage={PG!r}, "
        f"study={name!r}, progress=False, heartbeat_s=1, grace_s=3, metrics={LIGHT!r}); "
        "sys.exit(0 if s['complete'] else 3)"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, timeout=180)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    log = Counter((c, q) for c, q, _ in table.computation_log())
    assert table.count() == 32 * 4 and len(log) == 32 * 4
    assert max(log.values()) == 1  # no stored cell was computed twice


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_claims_and_insert_once(tmp_path, backend):
    t = GridTable(str(tmp_path / "c.sqlite") if backend == "sqlite" else PG, f"c_{uuid.uuid4().hex[:10]}")
    assert t.claim(1, owner=5, owner_alive=lambda n: True)
    assert not t.claim(1, owner=6, owner_alive=lambda n: True)  # a live owner keeps its unit
    assert t.claim(1, owner=5, owner_alive=lambda n: False)  # re-claiming your own unit
    assert t.claim(1, owner=6, owner_alive=lambda n: n != 5)  # a dead owner's unit is taken over
    assert not t.claim(1, owner=7, owner_alive=lambda n: n == 6)
    row = {"config_id": "a", "question_id": "q", "config": {}, "question": "x", "answer": "y"}
    assert t.add_rows([row]) == 1 and t.add_rows([row]) == 0 and t.count() == 1


def test_resume_from_a_committed_export(tmp_path):
    a = run_grid(TOY, tmp_path / "a.sqlite", questions=2, export=tmp_path / "a.jsonl.gz", **QUIET)
    s = run_grid(TOY, tmp_path / "b.sqlite", questions=3, import_from=tmp_path / "a.jsonl.gz", **QUIET)
    assert s["complete"] and s["rows"] == 32 * 3 and s["computed_now"] == 32  # only the new question
    # the total wall time counts the imported run's too (it was this run's alone)
    assert s["wall_s_total"] == pytest.approx(a["wall_s_total"] + s["wall_s_now"], abs=0.02)
    other = SearchSpace({"chunk_size": [40], "chunk_overlap": [0], "top_k": [1], "prompt": ["short"],
                         "temperature": [0.0]})
    with pytest.raises(TableMismatchError):
        run_grid(TOY, tmp_path / "c.sqlite", space=other, import_from=tmp_path / "a.jsonl.gz", **QUIET)


def test_units_group_configurations_by_the_pipelines_retrieval_keys():
    from autorag_hp.evaluation.grid.plan import plan
    from autorag_hp.rag.pipeline import RAGPipeline

    assert RAGPipeline.retrieval_keys == ("chunk_size", "chunk_overlap", "embedding", "top_k")
    space = SearchSpace({"top_k": [1, 2], "prompt": ["short", "cite"], "temperature": [0.0, 0.7]})
    items = [QAItem("q1", id="a"), QAItem("q2", id="b")]
    shared = plan(list(space.configs()), items, ("top_k",))
    assert len(shared) == 2 * 2 and all(len(u.configs) == 4 for u in shared)
    alone = plan(list(space.configs()), items, None)  # a pipeline that does not say shares no retrieval
    assert len(alone) == 2 * 8 and all(len(u.configs) == 1 for u in alone)
