"""GLM / GLM-4 through transformers' native classes (tiny random models built offline from configs), and the RAG
pipeline running with the local generator."""

from __future__ import annotations

import pytest

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def smol_dir():
    """The converted SmolLM2 directory: its tokenizer (with a chat template) stands in for a GLM tokenizer."""
    from autorag_hp.generators.model_files import convert_gguf, default_gguf_path

    return convert_gguf(default_gguf_path())


def _tiny(kind: str, out_dir, smol_dir):
    import torch
    from transformers import AutoTokenizer, Glm4Config, Glm4ForCausalLM, GlmConfig, GlmForCausalLM

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(str(smol_dir))
    cls_cfg, cls_model = {"glm": (GlmConfig, GlmForCausalLM), "glm4": (Glm4Config, Glm4ForCausalLM)}[kind]
    cfg = cls_cfg(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=512,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id,
    )
    model = cls_model(cfg).eval()
    model.save_pretrained(str(out_dir))
    tok.save_pretrained(str(out_dir))
    return out_dir


@pytest.mark.parametrize("kind", ["glm", "glm4"])
def test_tiny_glm_generates_through_generator_and_langchain(kind, tmp_path, smol_dir):
    import json

    import torch

    torch.set_num_threads(1)
    from autorag_hp.generators import ChatLocalGenerator, LocalGenerator

    path = _tiny(kind, tmp_path / kind, smol_dir)
    assert json.loads((path / "config.json").read_text())["model_type"] == kind
    gen = LocalGenerator(path, dtype="float32", threads=1)
    assert type(gen.model).__name__ == {"glm": "GlmForCausalLM", "glm4": "Glm4ForCausalLM"}[kind]
    out = gen.generate(FRANCE, max_new_tokens=5)
    assert isinstance(out.text, str)
    assert 1 <= out.completion_tokens <= 5
    assert out.prompt_tokens == gen.count_tokens(gen.format_prompt(FRANCE))
    assert gen.generate(FRANCE, max_new_tokens=5).text == out.text  # greedy: deterministic
    sampled = gen.generate(FRANCE, temperature=1.0, top_p=0.9, max_new_tokens=5, seed=1)
    assert sampled.text == gen.generate(FRANCE, temperature=1.0, top_p=0.9, max_new_tokens=5, seed=1).text
    assert "".join(gen.stream(FRANCE, max_new_tokens=5)).strip() == out.text
    batch = gen.generate_batch([FRANCE, "hello"], max_new_tokens=4)
    assert len(batch) == 2 and all(b.completion_tokens >= 1 for b in batch)

    msg = ChatLocalGenerator(generator=gen, max_new_tokens=5).invoke("What is the capital of France?")
    assert msg.content == out.text
    assert msg.usage_metadata["output_tokens"] == out.completion_tokens


def test_tiny_glm_in_bf16_and_int8(tmp_path, smol_dir):
    import torch

    torch.set_num_threads(1)
    from autorag_hp.generators import LocalGenerator

    path = _tiny("glm4", tmp_path / "glm4", smol_dir)
    bf16 = LocalGenerator(path, dtype="bfloat16", threads=1)
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    assert bf16.generate("hi", max_new_tokens=3).completion_tokens >= 1
    int8 = LocalGenerator(path, quantize="int8", threads=1)
    assert "Int8DynamicLinear" in {type(m).__name__ for m in int8.model.modules()}
    assert int8.generate("hi", max_new_tokens=3).completion_tokens >= 1
    w8 = LocalGenerator(path, quantize="int8-weight", dtype="bfloat16", threads=1)
    assert "Int8WeightOnlyLinear" in {type(m).__name__ for m in w8.model.modules()}
    assert w8.generate("hi", max_new_tokens=3).completion_tokens >= 1


def test_pipeline_runs_with_local_generator(tmp_path):
    import torch

    torch.set_num_threads(1)
    pipeline = pytest.importorskip("autorag_hp.rag.pipeline")
    from autorag_hp.generators import default_generator
    from autorag_hp.rag.data import Document

    gen = default_generator(dtype="float32", threads=1)
    docs = [
        Document("paris", "Paris is the capital and largest city of France."),
        Document("berlin", "Berlin is the capital of Germany."),
        Document("rome", "Rome is the capital of Italy."),
    ]
    pipe = pipeline.RAGPipeline(
        docs, generator=gen, defaults={"embedding": "bm25", "top_k": 1, "max_new_tokens": 16},
        cache_dir=tmp_path, progress=False,
    )
    ans = pipe.run("What is the capital of France?")
    assert ans.contexts and ans.contexts[0].source == "paris"
    assert "Paris" in ans.text
    assert ans.prompt_tokens > 0 and 1 <= ans.completion_tokens <= 16


@pytest.mark.slow
def test_tiny_glm_with_torch_compile(tmp_path, smol_dir):
    """torch.compile on the CPU (inductor needs a C++ compiler); slow because the first calls compile."""
    import torch

    torch.set_num_threads(1)
    from autorag_hp.generators import LocalGenerator

    path = _tiny("glm", tmp_path / "glm", smol_dir)
    eager = LocalGenerator(path, dtype="float32", threads=1).generate(FRANCE, max_new_tokens=4)
    compiled = LocalGenerator(path, dtype="float32", threads=1, compile=True)
    assert compiled.plan.compile
    assert compiled.generate(FRANCE, max_new_tokens=4).text == eager.text
