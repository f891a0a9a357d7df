"""Batched generation in the grid (``run_grid(batch=N)`` / ``autorag-hp grid --generate-batch N``): the same cells as one
answer at a time, prompts grouped by their generation settings, identical temperature-0 prompts answered once.
Real pipeline (bundled FAQ, BM25) with a small deterministic generator that has ``generate_batch``."""

from __future__ import annotations

from autorag_hp.evaluation.grid import run_grid
from autorag_hp.evaluation.table import GridTable
from autorag_hp.generators.base import Generation, Sampling
from autorag_hp.rag.prompts import passages_in
from autorag_hp.space import SearchSpace

SPACE = {"retrieval": {"chunk_size": [256, 512], "top_k": [1, 3], "embedding": ["bm25"]},
         "generation": {"prompt": ["concise", "cite"], "temperature": [0.0, 0.7]}}


class EchoBatch:
    """Answers with the first words of the first passage and the temperature; records every batch it gets."""

    llm_calls = 1
    name = "echo-batch"

    def __init__(self):
        self.batches: list[tuple[int, float]] = []

    def __str__(self) -> str:  # how the table records the pipeline: the same for every instance
        return self.name

    def _one(self, messages, s: Sampling) -> Generation:
        text = " ".join(passages_in(messages)[0][1].split()[:5]) + f" t={s.temperature}"
        return Generation(text, len(str(messages)) // 4, 6, 0.01)

    def generate(self, messages, sampling=None, **kw):
        s = Sampling.of(sampling, **kw)
        self.batches.append((1, s.temperature))
        return self._one(messages, s)

    def generate_batch(self, batch, sampling=None, **kw):
        s = Sampling.of(sampling, **kw)
        self.batches.append((len(batch), s.temperature))
        return [self._one(m, s) for m in batch]


def _cells(path):
    return {(r["config_id"], r["question_id"]): (r["answer"], r["metrics"]["token_f1"], r["prompt_tokens"])
            for r in GridTable(str(path)).rows()}


def test_batched_grid_computes_the_same_cells_in_batches(tmp_path):
    one, many = EchoBatch(), EchoBatch()
    kw = dict(space=SearchSpace(SPACE), questions=3, progress=False, log=lambda m: None)
    s1 = run_grid("python_docs_faq", tmp_path / "one.sqlite", pipeline_kwargs={"generator": one}, **kw)
    s8 = run_grid("python_docs_faq", tmp_path / "many.sqlite", pipeline_kwargs={"generator": many}, batch=8, **kw)
    assert s1["complete"] and s8["complete"] and s1["rows"] == s8["rows"] == 16 * 3
    assert _cells(tmp_path / "one.sqlite") == _cells(tmp_path / "many.sqlite")
    assert s8["llm_calls_total"] + s8["answers_reused_total"] == 48
    assert s8["llm_calls_total"] == s1["llm_calls_total"]  # the same identical prompts are answered once
    assert {n for n, _ in one.batches} == {1}
    assert max(n for n, _ in many.batches) == 8 and sum(n for n, _ in many.batches) == s8["llm_calls_total"]
    rows = list(GridTable(str(tmp_path / "many.sqlite")).rows())
    assert all(r["answer"].endswith(f"t={r['config']['temperature']}") for r in rows)  # grouped by temperature


def test_a_batched_grid_resumes_where_it_stopped(tmp_path):
    kw = dict(space=SearchSpace(SPACE), progress=False, log=lambda m: None, batch=4)
    run_grid("python_docs_faq", tmp_path / "g.sqlite", pipeline_kwargs={"generator": EchoBatch()}, questions=2, **kw)
    gen = EchoBatch()
    s = run_grid("python_docs_faq", tmp_path / "g.sqlite", pipeline_kwargs={"generator": gen}, questions=3, **kw)
    assert s["complete"] and s["rows"] == 48 and s["computed_now"] == 16
