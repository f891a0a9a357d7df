"""The perplexity gate of the ``auto`` kernel: a kernel faster than fp32 is chosen only within the allowed
perplexity increase. The decision logic runs on fake timings and fake perplexities; the gate itself on the
real SmolLM2 model."""

from __future__ import annotations

import pytest
from test_generators import (  # its capability tables and fake timings
    AVX512_BF16,
    SMOL_SHAPES,
    SPR,
    fake_bench,
)

from autorag_hp.generators.accel import AccelerationOptions
from autorag_hp.generators.kernel_plan import KernelDecision, decide_kernel

EPYC = {**AVX512_BF16, "avx512_vnni": True}  # AVX-512-BF16 and VNNI, no AMX: int8, int8-weight and bf16 compete
SPEED = {"fp32": 1.0, "bf16": 0.7, "int8": 0.5, "int8-weight": 0.65}


def fake_quality(increase: dict, calls: list):
    def gate(kernel):
        calls.append(kernel)
        return increase[kernel]

    return gate


def test_a_faster_kernel_over_the_perplexity_allowed_is_not_chosen(tmp_path):
    calls: list = []
    d = decide_kernel(SMOL_SHAPES, EPYC, cache_root=tmp_path, bench=fake_bench(SPEED),
                      quality=fake_quality({"int8": 0.042, "int8-weight": 0.004, "bf16": 0.0}, calls))
    assert d.kernel == "int8-weight"
    assert calls == ["int8", "int8-weight"]  # fastest first, until one passes: bf16 (slower) needs no check
    assert d.quality == {"int8": pytest.approx(0.042), "int8-weight": pytest.approx(0.004)}
    assert any(r.startswith("int8: perplexity +4.2% against fp32") and "not chosen" in r for r in d.reasons)
    assert "perplexity int8 +4.2%, int8-weight +0.4%" in d.describe()
    cached = decide_kernel(SMOL_SHAPES, EPYC, cache_root=tmp_path, bench=fake_bench(SPEED),
                           quality=fake_quality({}, calls))  # from the cache: nothing measured again
    assert (cached.source, cached.kernel, cached.quality) == ("cache", "int8-weight", d.quality)
    assert calls == ["int8", "int8-weight"]


def test_when_every_faster_kernel_fails_the_gate_fp32_is_kept_and_cached(tmp_path):
    calls: list = []
    d = decide_kernel(SMOL_SHAPES, SPR, cache_root=tmp_path, bench=fake_bench(SPEED),
                      quality=fake_quality({"int8": 0.05, "int8-weight": 0.03, "bf16": 0.021}, calls))
    assert d.kernel == "fp32" and d.stable
    assert d.reasons[0] == "chose fp32: bf16, int8, int8-weight faster, but over the perplexity allowed"
    assert calls == ["int8", "int8-weight", "bf16"]
    assert len(list(tmp_path.glob("kernel-plans/*.json"))) == 1


def test_the_allowed_increase_is_part_of_the_cached_decision(tmp_path):
    increase = {"int8": 0.03, "int8-weight": 0.004, "bf16": 0.0}
    strict = decide_kernel(SMOL_SHAPES, EPYC, cache_root=tmp_path, bench=fake_bench(SPEED),
                           quality=fake_quality(increase, []))
    loose = decide_kernel(SMOL_SHAPES, EPYC, cache_root=tmp_path, bench=fake_bench(SPEED),
                          quality=fake_quality(increase, []), max_ppl_increase=0.05)
    speed_only = decide_kernel(SMOL_SHAPES, EPYC, cache_root=tmp_path, bench=fake_bench(SPEED))
    assert (strict.kernel, loose.kernel, speed_only.kernel) == ("int8-weight", "int8", "int8")
    assert (loose.source, speed_only.source, speed_only.quality) == ("measured", "measured", {})
    assert len(list(tmp_path.glob("kernel-plans/*.json"))) == 3


def test_a_kernel_whose_perplexity_cannot_be_measured_is_not_chosen(tmp_path):
    def gate(kernel):
        if kernel == "int8":
            raise RuntimeError("no kernel for this shape")
        return 0.001

    d = decide_kernel(SMOL_SHAPES, EPYC, cache_root=tmp_path, bench=fake_bench(SPEED), quality=gate)
    assert d.kernel == "int8-weight" and d.quality == {"int8-weight": pytest.approx(0.001)}
    assert any(r.startswith("int8: its perplexity could not be measured (RuntimeError") for r in d.reasons)


def test_decisions_keep_their_perplexities_through_the_cache_format():
    d = KernelDecision("int8-weight", ("fp32", "int8", "int8-weight"), {"fp32": 1.0, "int8": 0.5},
                       ("chose int8-weight",), quality={"int8": 0.042, "int8-weight": 0.004})
    back = KernelDecision.from_json(d.to_json())
    assert back.quality == d.quality and back.kernel == "int8-weight"
    old = {k: v for k, v in d.to_json().items() if k != "quality"}  # written before the gate existed
    assert KernelDecision.from_json(old).quality == {}


@pytest.mark.parametrize("bad", [-0.01, float("inf"), float("nan"), "0.02", True])
def test_a_bad_allowed_increase_is_refused_with_what_to_give(bad):
    with pytest.raises(ValueError, match="max_ppl_increase must be a fraction >= 0"):
        AccelerationOptions(max_ppl_increase=bad)
    assert AccelerationOptions(max_ppl_increase=None).max_ppl_increase is None


def test_the_gate_measures_the_real_model_and_leaves_it_untouched():
    import torch

    from autorag_hp.generators.accel import apply_plan
    from autorag_hp.generators.model_files import convert_gguf, default_gguf_path, load_pretrained
    from autorag_hp.generators.quality_gate import CALIBRATION_TOKENS, PerplexityGate

    torch.set_num_threads(1)
    tokenizer, model = load_pretrained(convert_gguf(default_gguf_path()), False)
    model.eval()
    before = model.model.layers[0].mlp.down_proj.weight.clone()

    def variant(m, kernel):
        from autorag_hp.generators.accel import plan_acceleration

        dtype = {"fp32": "float32", "bf16": "bfloat16"}[kernel]
        plan = plan_acceleration(AVX512_BF16, AccelerationOptions(dtype=dtype, quantize=None, threads=1))
        return apply_plan(m, plan), plan.bf16_autocast

    gate = PerplexityGate(model, tokenizer, variant)
    assert gate.ids.shape[0] == CALIBRATION_TOKENS
    assert 1.0 < gate.reference() < 1000.0  # a real language model on English prose
    assert gate("fp32") == pytest.approx(0.0, abs=1e-6)  # the same weights and kernel: the same perplexity
    bf16 = gate("bf16")
    assert bf16 != 0.0 and abs(bf16) < 0.05  # bf16 weights move it, a little
    assert torch.equal(model.model.layers[0].mlp.down_proj.weight, before)  # the copies were changed, not it
    assert next(model.parameters()).dtype == torch.float32


def test_a_shared_copy_converts_without_touching_or_copying_the_original():
    import torch

    from autorag_hp.generators.quality_gate import new_parameters_on_conversion, shared_copy

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.LayerNorm(8))
    model.register_buffer("table", torch.arange(4.0))
    twin = shared_copy(model)
    assert twin[0].weight is model[0].weight and twin.table is model.table  # no weight copied
    before = model[0].weight.detach().clone()
    with new_parameters_on_conversion():
        twin.to(torch.bfloat16)
    assert twin[0].weight.dtype == torch.bfloat16 and twin.table.dtype == torch.bfloat16
    assert model[0].weight.dtype == torch.float32 and torch.equal(model[0].weight, before)
    assert model.table.dtype == torch.float32
    assert not torch.__future__.get_overwrite_module_params_on_conversion()  # the switch is put back
