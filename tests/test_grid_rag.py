"""The grid runner on the real RAG pipeline (bundled Python FAQ, BM25, extractive generator: no LLM)."""

from __future__ import annotations

from pathlib import Path

import pytest

from autorag_hp.evaluation.grid import run_grid
from autorag_hp.evaluation.table import GridTable
from autorag_hp.space import SearchSpace

ROOT = Path(__file__).resolve().parents[1]
SPEC = "python_docs_faq"  # a bundled pipeline name


def test_grid_on_the_real_pipeline_with_extractive_generator(tmp_path):
    space = SearchSpace({"retrieval": {"chunk_size": [256, 512], "top_k": [1, 3], "embedding": ["bm25"]},
                         "generation": {"prompt": ["concise", "cite"], "temperature": [0.0]}})
    out = tmp_path / "grid.sqlite"
    s = run_grid(SPEC, out, pipeline_kwargs={"generator": "extractive"}, space=space, questions=3,
                 progress=False, log=lambda m: None)
    assert s["complete"] and s["rows"] == 8 * 3
    assert s["llm_calls_total"] == 0  # the extractive generator calls no LLM
    table = GridTable(str(out))
    rows = list(table.rows())
    assert all(r["answer"] and r["contexts"] for r in rows)
    assert {len(r["contexts"]) for r in rows} == {1, 3}
    # gold-source metrics are computed against the FAQ section ids
    assert any(r["metrics"]["mrr"] and r["metrics"]["mrr"] > 0 for r in rows)
    assert all(r["metrics"]["token_precision"] is not None for r in rows)
    assert table.meta()["pipeline"].endswith('{"generator": "extractive"}')


@pytest.mark.slow
def test_grid_with_the_local_llm(tmp_path):
    """SmolLM2 (int8) as the generator: LLM calls are counted, temperature-0 prompts answered once."""
    space = SearchSpace({"retrieval": {"chunk_size": [256], "top_k": [1], "embedding": ["bm25"]},
                         "generation": {"prompt": ["concise"], "temperature": [0.0, 0.7], "max_new_tokens": [8]}})
    s = run_grid(SPEC, tmp_path / "g.sqlite", space=space, questions=2, progress=False, log=lambda m: None,
                 pipeline_kwargs={"generator": {"type": "local", "quantize": "int8", "threads": 2}})
    assert s["complete"] and s["rows"] == 4 and s["llm_calls_total"] == 4
    s2 = run_grid(SPEC, tmp_path / "g.sqlite", space=space, questions=2, progress=False, log=lambda m: None,
                  pipeline_kwargs={"generator": {"type": "local", "quantize": "int8", "threads": 2}})
    assert s2["llm_calls_now"] == 0  # resumed: nothing recomputed


def test_the_ground_truth_grid_is_reproducible_from_its_suite():
    """eval/suites/python_docs_llm.yaml is what made eval/results/grid_python_docs.*: the live check relies on it."""
    import gzip
    import json

    from autorag_hp.rag.pipeline import load_pipeline

    with gzip.open(ROOT / "eval" / "results" / "grid_python_docs.jsonl.gz", "rt", encoding="utf-8") as f:
        next(f)  # _meta
        rows = [json.loads(next(f)) for _ in range(2)]  # bm25, chunk 256, top 1: the cheapest index
    pipe = load_pipeline(str(ROOT / "eval" / "suites" / "python_docs_llm.yaml"))
    items = {q.id: q for q in pipe.questions()}
    for row in rows:
        assert row["config"]["embedding"] == "bm25"
        answer = pipe.run(items[row["question_id"]].question, row["config"])
        assert [c.source for c in answer.contexts] == [c[0] for c in row["contexts"]]
        assert (answer.text, answer.prompt_tokens, answer.completion_tokens) == (
            row["answer"], row["prompt_tokens"], row["completion_tokens"])
