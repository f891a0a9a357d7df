"""The grid runner on the real RAG pipeline (bundled Python FAQ, BM25, extractive generator: no LLM)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from autorag_hp.evaluation.grid import run_grid
from autorag_hp.evaluation.table import GridTable
from autorag_hp.space import SearchSpace

ROOT = Path(__file__).resolve().parents[1]
SPEC = "python_docs_faq"  # a bundled pipeline name
GROUND_TRUTH = ROOT / "eval" / "results" / "grid_python_docs.jsonl.gz"
SUITE = ROOT / "eval" / "suites" / "python_docs_llm.yaml"


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


def test_a_grid_records_the_cpu_kind_it_was_computed_on(tmp_path):
    """Every run that computes cells adds this machine's CPU fingerprint to the table's meta; exports and
    imports carry it; rows of unknown origin make the table's kind unknown."""
    from autorag_hp.evaluation.cpu_kinds import made_on, same_cpu_kind, this_cpu
    from autorag_hp.evaluation.table_export import read_export

    here = this_cpu()
    assert here["capability"] and here["flags"] is not None and here["torch"]
    space = SearchSpace({"retrieval": {"chunk_size": [256], "top_k": [1, 3], "embedding": ["bm25"]}})
    kw = dict(pipeline_kwargs={"generator": "extractive"}, space=space, progress=False, log=lambda m: None)
    run_grid(SPEC, tmp_path / "a.sqlite", questions=2, export=tmp_path / "a.jsonl.gz", **kw)
    run_grid(SPEC, tmp_path / "a.sqlite", questions=2, **kw)  # nothing to compute: nothing recorded again
    meta = GridTable(str(tmp_path / "a.sqlite")).meta()
    assert meta["cpus"] == [here] and made_on(meta) == here and same_cpu_kind(made_on(meta))
    assert read_export(tmp_path / "a.jsonl.gz")[1]["cpus"] == [here]
    GridTable(str(tmp_path / "a.sqlite")).export(tmp_path / "copy.sqlite")
    assert GridTable(str(tmp_path / "copy.sqlite")).meta()["cpus"] == [here]

    # an export that recorded no CPU (like the grids made before tables recorded one)
    with gzip.open(tmp_path / "a.jsonl.gz", "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    old_meta = json.loads(lines[0])["_meta"]
    del old_meta["cpus"]
    with gzip.open(tmp_path / "old.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join([json.dumps({"_meta": old_meta}), *lines[1:]]) + "\n")
    run_grid(SPEC, tmp_path / "b.sqlite", questions=2, import_from=tmp_path / "old.jsonl.gz", **kw)
    meta = GridTable(str(tmp_path / "b.sqlite")).meta()
    assert [c["cpu"] for c in meta["cpus"]] == ["unknown"] and made_on(meta) is None
    run_grid(SPEC, tmp_path / "b.sqlite", questions=3, **kw)  # one more question, computed here: mixed
    meta = GridTable(str(tmp_path / "b.sqlite")).meta()
    assert here in meta["cpus"] and len(meta["cpus"]) == 2 and made_on(meta) is None


def test_same_cpu_kind_compares_capability_flags_isa_caps_and_torch():
    from autorag_hp.evaluation.cpu_kinds import made_on, same_cpu_kind, unknown_cpu

    amx = {"capability": "AVX512", "flags": ["amx_bf16", "amx_int8", "amx_tile", "avx2", "avx512_bf16", "avx512_f",
                                             "avx512_vnni", "avx_vnni"], "torch": "2.13.0+cpu", "cpu": "Intel Xeon"}
    assert same_cpu_kind(amx, dict(amx, cpu="another Xeon name"))  # the model name is for people, not the match
    assert not same_cpu_kind(amx, dict(amx, capability="AVX2"))
    assert not same_cpu_kind(amx, dict(amx, flags=amx["flags"][3:]))  # an AVX-512 CPU without AMX
    assert not same_cpu_kind(amx, dict(amx, isa_env={"ONEDNN_MAX_CPU_ISA": "AVX2"}))
    assert not same_cpu_kind(amx, dict(amx, torch="2.14.0+cpu"))
    assert not same_cpu_kind(None, amx) and not same_cpu_kind(unknown_cpu("x"), amx)
    assert made_on({"cpus": [amx, dict(amx, cpu="same kind")]}) == amx
    assert made_on({"cpus": [amx, dict(amx, capability="AVX2")]}) is None  # mixed
    assert made_on({"cpus": [amx, unknown_cpu("imported")]}) is None and made_on({}) is None


def test_the_ground_truth_grid_records_its_cpu_as_unknown():
    """eval/results/grid_python_docs.jsonl.gz predates CPU fingerprints: what is known about its CPU (AMD EPYC,
    from the generator benchmark of the same session) is recorded, ATen's capability is not, so no machine
    is taken to be its kind and its answers are never compared bit for bit."""
    from autorag_hp.evaluation.cpu_kinds import made_on, same_cpu_kind

    with gzip.open(GROUND_TRUTH, "rt", encoding="utf-8") as f:
        meta = json.loads(f.readline())["_meta"]
    (cpu,) = meta["cpus"]
    assert cpu["cpu"] == "AMD EPYC" and cpu["capability"] is None and cpu["flags_known"]["avx512_bf16"]
    assert made_on(meta) is None and not same_cpu_kind(cpu)


@pytest.mark.slow
def test_grid_with_the_local_llm(tmp_path):
    """SmolLM2 (auto kernels) as the generator: LLM calls are counted, temperature-0 prompts answered once."""
    space = SearchSpace({"retrieval": {"chunk_size": [256], "top_k": [1], "embedding": ["bm25"]},
                         "generation": {"prompt": ["concise"], "temperature": [0.0, 0.7], "max_new_tokens": [8]}})
    s = run_grid(SPEC, tmp_path / "g.sqlite", space=space, questions=2, progress=False, log=lambda m: None,
                 pipeline_kwargs={"generator": {"type": "local", "threads": 2}})
    assert s["complete"] and s["rows"] == 4 and s["llm_calls_total"] == 4
    s2 = run_grid(SPEC, tmp_path / "g.sqlite", space=space, questions=2, progress=False, log=lambda m: None,
                  pipeline_kwargs={"generator": {"type": "local", "threads": 2}})
    assert s2["llm_calls_now"] == 0  # resumed: nothing recomputed
    # computed on this machine, so this machine must reproduce its greedy answers bit for bit
    from autorag_hp.evaluation.cpu_kinds import made_on, same_cpu_kind
    from autorag_hp.rag.load import pipeline_from_spec

    table = GridTable(str(tmp_path / "g.sqlite"))
    assert same_cpu_kind(made_on(table.meta()))
    pipe = pipeline_from_spec(SPEC, {"generator": {"type": "local", "threads": 2}})
    for row in (r for r in table.rows() if r["config"]["temperature"] == 0.0):
        answer = pipe.run(row["question"], row["config"])
        assert (answer.text, answer.prompt_tokens, answer.completion_tokens) == (
            row["answer"], row["prompt_tokens"], row["completion_tokens"])


FORCED_TOKENS = 16  # answer tokens fed back per cell by the tolerant check
MAX_MARGIN_RATIO = 0.6  # the suite's model must fit the recorded answers this much better than fp32 SmolLM2


def ground_truth_cells(question_slice=slice(4, 8)) -> tuple[list[dict], dict]:
    """The BM25 cells (the cheapest index: 16 configurations) of a few questions of the committed ground-truth
    grid, and its meta. Questions 5 to 8: the first four were used to choose the tolerances below."""
    from autorag_hp.evaluation.table_export import read_export

    rows, meta = read_export(GROUND_TRUTH)
    rows = [r for r in rows if r["config"]["embedding"] == "bm25"]
    qids = sorted({r["question_id"] for r in rows})[question_slice]
    return sorted((r for r in rows if r["question_id"] in qids), key=lambda r: (r["question_id"], r["config_id"])), meta


def _targets(tok, answer: str, ended: bool, limit: int) -> list[int]:
    target = tok(answer, add_special_tokens=False)["input_ids"][:limit]
    if ended and len(target) < limit:  # the answer stopped at EOS
        target.append(tok.eos_token_id)
    return target


def forced_margins(gen, prompt: str, answer: str, ended: bool, limit: int = FORCED_TOKENS) -> list[float]:
    """Feed a recorded greedy answer back to ``gen``'s model as its own output, through ``model.generate``
    (the computation greedy generation does, step for step, KV cache included), and return per step how far
    the recorded token's log-probability is below the best token's: 0 where this model would have chosen it.

    On the CPU kind that recorded the answer every margin is 0; elsewhere float kernels round differently
    and near-ties flip, so a few margins are small positive numbers. A different model, quantization or
    prompt gives large ones."""
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList

    tok = gen.tokenizer
    target = _targets(tok, answer, ended, limit)
    margins: list[float] = []

    class Force(LogitsProcessor):
        def __call__(self, input_ids, scores):
            want = target[len(margins)]
            lp = torch.log_softmax(scores[0].float(), dim=-1)
            margins.append(float(lp.max() - lp[want]))
            forced = torch.full_like(scores, float("-inf"))
            forced[:, want] = 0.0
            return forced

    enc = tok([prompt], return_tensors="pt", add_special_tokens=False)  # as LocalGenerator encodes a chat prompt
    with torch.inference_mode():
        gen.model.generate(**enc, max_new_tokens=len(target), do_sample=False,
                           logits_processor=LogitsProcessorList([Force()]), pad_token_id=tok.pad_token_id)
    return margins


def teacher_forced_margins(gen, prompt: str, answer: str, ended: bool, limit: int = FORCED_TOKENS) -> list[float]:
    """The same margins from one forward pass over prompt + answer: cheaper, and equal up to rounding for an
    fp32 model (not for per-tensor int8, whose activation scales then span the whole sequence)."""
    import torch

    tok = gen.tokenizer
    target = _targets(tok, answer, ended, limit)
    ids = tok(prompt, add_special_tokens=False)["input_ids"] + target
    with torch.inference_mode():  # logits only where a target token is predicted: the last len(target) + 1
        logits = gen.model(torch.tensor([ids]), logits_to_keep=len(target) + 1).logits[0, :-1]
    lp = torch.log_softmax(logits.float(), dim=-1)
    return (lp.max(dim=-1).values - lp[torch.arange(len(target)), torch.tensor(target)]).tolist()


def check_ground_truth(pipe, cells: list[dict], meta: dict, reference=None, exact: bool | None = None) -> dict:
    """What the ground-truth test asserts; returns the measured numbers. ``exact``: default: whether this
    machine is the CPU kind the table records (:func:`autorag_hp.evaluation.cpu_kinds.made_on`)."""
    from autorag_hp.evaluation.cpu_kinds import made_on, same_cpu_kind

    if exact is None:
        exact = same_cpu_kind(made_on(meta))
    items = {q.id: q for q in pipe.questions()}
    gen = pipe.generator
    ours, ref = [], []
    for row in cells:
        question = items[row["question_id"]].question
        # deterministic on every CPU: retrieval (BM25) and the exact prompt the model sees
        contexts = pipe.retrieve(question, row["config"])
        assert [c.source for c in contexts] == [c[0] for c in row["contexts"]], row["config_id"]
        prompt = gen.format_prompt(pipe.render_prompt(question, contexts, row["config"]))
        assert gen.count_tokens(prompt) == row["prompt_tokens"], row["config_id"]
        if row["config"]["temperature"] != 0.0 or row["config"]["top_k"] != 1 or exact:
            continue  # sampled answers are not greedy; top_k 3 prompts are long (slow): prompt checks only
        ended = row["completion_tokens"] < row["config"]["max_new_tokens"]  # stopped at EOS
        ours += forced_margins(gen, prompt, row["answer"], ended)
        ref += teacher_forced_margins(reference, prompt, row["answer"], ended)
    if exact:  # the table's own CPU kind: bit-identical answers and token counts
        for row in cells[:2]:
            answer = pipe.run(items[row["question_id"]].question, row["config"])
            assert (answer.text, answer.prompt_tokens, answer.completion_tokens) == (
                row["answer"], row["prompt_tokens"], row["completion_tokens"])
        return {"exact": True}
    mean, mean_ref = sum(ours) / len(ours), sum(ref) / len(ref)
    assert mean <= MAX_MARGIN_RATIO * mean_ref, (
        f"the suite's generator reproduces the recorded greedy answers no better than fp32 SmolLM2: mean margin "
        f"{mean:.3f} vs {mean_ref:.3f} nats/token over {len(ours)} tokens (ratio {mean / mean_ref:.2f} > "
        f"{MAX_MARGIN_RATIO}); the generator of eval/suites/python_docs_llm.yaml no longer matches the grid")
    return {"exact": False, "tokens": len(ours), "mean_margin": mean, "mean_margin_fp32": mean_ref,
            "ratio": mean / mean_ref}


def test_the_ground_truth_grid_is_reproducible_from_its_suite():
    """eval/suites/python_docs_llm.yaml is what made eval/results/grid_python_docs.*: the live check relies on it.

    Retrieved contexts and prompt token counts are deterministic: exact on every CPU, for 64 cells (4 questions x
    16 BM25 configurations). Answers are floating-point LLM output: bit-identical only on the CPU kind the table
    records (meta ``cpus``; the committed grid's is unknown, so on none). Elsewhere the recorded greedy answers of
    the 16 temperature-0, top_k-1 cells are fed back token by token: the suite's model must fit them clearly
    better than fp32 SmolLM2 (mean margin ratio <= 0.6). Measured ratios on these cells: 0.25 on an AMX Xeon,
    0.24 under AVX2 emulation (ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2); with the suite's generator
    changed to W8A8 int8 0.97, to fp32 1.00; with two prompt templates reworded at equal token counts 0.78; a
    different top_k fails on the contexts."""
    import torch

    from autorag_hp.generators import default_generator
    from autorag_hp.rag.pipeline import load_pipeline

    torch.set_num_threads(1)
    cells, meta = ground_truth_cells()
    assert len(cells) == 4 * 16 and all(r["config"]["embedding"] == "bm25" for r in cells)
    pipe = load_pipeline(str(SUITE))
    # fp32 SmolLM2 as test_generators.py's fixture loads it (an explicit dtype is never quantized, so the same
    # model): default_generator's process-wide cache then loads it once per session
    check_ground_truth(pipe, cells, meta, reference=default_generator(dtype="float32", threads=1))


def test_the_live_check_report_says_whether_the_cpu_kinds_match():
    from autorag_hp.commands.bench import _cpu_note
    from autorag_hp.evaluation.cpu_kinds import this_cpu

    assert "Same CPU kind" in _cpu_note({"cpus": [this_cpu()]})
    note = _cpu_note({})
    assert "Table computed on: not recorded" in note and "Not the same CPU kind" in note
    with gzip.open(GROUND_TRUTH, "rt", encoding="utf-8") as f:
        assert "unknown (AMD EPYC)" in _cpu_note(json.loads(f.readline())["_meta"])
