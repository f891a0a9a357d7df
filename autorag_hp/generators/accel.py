"""CPU acceleration decisions: dtype (bf16 only where the CPU has it), int8, torch.compile, threads, IPEX.

The decision logic is a pure function over a capability table (the dict that
``torch.cpu.get_capabilities()`` returns; see :mod:`~autorag_hp.generators.capabilities`), so it can be tested with faked tables for machines we do not have
(an AMX Xeon, an AVX-512-only or an AVX2-only CPU)::

    >>> plan = plan_acceleration({"amx_bf16": True, "avx512_bf16": True}, dtype="auto")
    >>> plan.dtype
    'bfloat16'
    >>> plan_acceleration({"avx2": True}, dtype="auto").dtype
    'float32'

Without a measurement (``decision=None``) ``auto`` falls back to the capability choice above and never
quantizes; :class:`~autorag_hp.generators.local.LocalGenerator` passes the
:class:`~autorag_hp.generators.kernel_plan.KernelDecision` of a one-off micro-benchmark of the model's own
linear shapes (cached), which may pick int8, bf16, int8-weight or fp32, never one slower than fp32.

Why gate bf16: on CPUs without native bf16 dot products (``avx512_bf16``) or AMX tiles (``amx_bf16``) oneDNN
emulates bf16 with conversions, which is slower than plain fp32. Why gate int8 (W8A8, ``torch._int_mm``): without
VNNI (``avx512_vnni``, ``avx_vnni``, ``amx_int8``) it is ~30x slower than an fp32 matmul on an AVX2 CPU.

intel-extension-for-pytorch (IPEX) has reached end of life and only supports torch <= 2.8; it is used only when
it is installed *and* its major.minor matches torch's. Everything else comes from PyTorch itself (oneDNN).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .base import Overridable
from .capabilities import cpu_tier, has_native_bf16, has_vnni
from .quality_gate import MAX_PPL_INCREASE

if TYPE_CHECKING:  # pragma: no cover
    from .kernel_plan import KernelDecision

DTYPES = ("auto", "float32", "bfloat16")
# "auto": the fastest of fp32 / int8 / int8-weight / bf16 on this CPU, by capability and a measurement.
# "int8-dynamic" is torch.ao's per-tensor dynamic quantization, kept only to reproduce answers made with it (the
# ground-truth grid eval/results/grid_python_docs.*): it raises SmolLM2's perplexity by ~200 %; use "int8".
QUANTIZE = ("auto", None, "int8", "int8-weight", "int8-dynamic")
BF16_MODES = ("weights", "autocast")
IPEX_MAX_TORCH = (2, 8)


def normalize_quantize(quantize):
    """``None`` for the spellings of "no quantization" a YAML spec produces (``none``, ``off``, ``false``)."""
    if quantize is False or (isinstance(quantize, str) and quantize.strip().lower() in ("none", "off", "false")):
        return None
    return quantize


def needs_measurement(dtype: str, quantize: str | None) -> bool:
    """True when the request leaves the kernel to ``auto``: ``dtype="auto"`` with ``quantize="auto"`` (fp32,
    bf16, int8 or int8-weight) or ``quantize=None`` (fp32 or bf16). An explicit dtype is honoured as asked."""
    return dtype == "auto" and quantize in ("auto", None)


def choose_dtype(caps: Mapping, requested: str = "auto") -> str:
    """``"bfloat16"`` or ``"float32"``: ``auto`` picks bf16 only where
    :func:`~autorag_hp.generators.capabilities.has_native_bf16`.

    An explicit ``bfloat16`` is honoured even without native support (it is correct, only slower).
    """
    if requested not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {requested!r}")
    if requested != "auto":
        return requested
    return "bfloat16" if has_native_bf16(caps) else "float32"


def _major_minor(version: str) -> tuple[int, int]:
    parts = version.split("+")[0].split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (0, 0)


def ipex_compatible(ipex_version: str | None, torch_version: str) -> tuple[bool, str]:
    """Whether an installed IPEX may be used with this torch, and why (not)."""
    if not ipex_version:
        return False, "intel-extension-for-pytorch is not installed (it is end-of-life; not needed)"
    tv, iv = _major_minor(torch_version), _major_minor(ipex_version)
    if tv > IPEX_MAX_TORCH:
        return False, f"IPEX supports torch <= {IPEX_MAX_TORCH[0]}.{IPEX_MAX_TORCH[1]}; torch is {torch_version}"
    if tv != iv:
        return False, f"IPEX {ipex_version} does not match torch {torch_version} (major.minor must be equal)"
    return True, f"IPEX {ipex_version} matches torch {torch_version}"


@dataclass(frozen=True)
class AccelerationOptions(Overridable):
    """What the caller asks for: the ``dtype``, ``bf16_mode``, ``quantize``, ``compile``, ``threads``, ``ipex`` and
    ``max_ppl_increase`` keywords of :class:`~autorag_hp.generators.local.LocalGenerator` (which says what each means) and of
    :func:`plan_acceleration`, validated; ``quantize``'s YAML spellings of "none" become None. Keywords override
    an options object (:meth:`~autorag_hp.generators.base.Overridable.of`)."""

    dtype: str = "auto"
    bf16_mode: str = "weights"
    quantize: str | None = "auto"
    compile: bool = False
    threads: int | None = None
    ipex: bool | None = None
    max_ppl_increase: float | None = MAX_PPL_INCREASE

    def __post_init__(self) -> None:
        object.__setattr__(self, "quantize", normalize_quantize(self.quantize))
        if self.max_ppl_increase is not None and not (
                isinstance(self.max_ppl_increase, int | float) and not isinstance(self.max_ppl_increase, bool)
                and 0 <= self.max_ppl_increase < float("inf")):
            raise ValueError("max_ppl_increase must be a fraction >= 0 (0.02 = +2 % perplexity allowed), or None to "
                             f"choose the kernel by speed alone; got {self.max_ppl_increase!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.quantize not in QUANTIZE:
            raise ValueError(f"quantize must be one of {QUANTIZE}, got {self.quantize!r}")
        if self.bf16_mode not in BF16_MODES:
            raise ValueError(f"bf16_mode must be one of {BF16_MODES}, got {self.bf16_mode!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 (or None for one per physical core), got {self.threads}")

    @property
    def auto_kernel(self) -> bool:
        """True when the kernel is left to ``auto`` (:func:`needs_measurement`): measured on this CPU."""
        return needs_measurement(self.dtype, self.quantize)


@dataclass(frozen=True)
class AccelerationPlan:
    """What :class:`~autorag_hp.generators.local.LocalGenerator` will do to the model on this CPU."""

    dtype: str = "float32"  # weights / compute dtype
    bf16_mode: str = "weights"  # "weights": cast weights to bf16; "autocast": fp32 weights, bf16 autocast
    quantize: str | None = None  # None, "int8" (W8A8 per-token dynamic), "int8-weight" (W8, bf16 activations),
    # or "int8-dynamic" (torch.ao per-tensor dynamic: legacy, low quality, for reproducing old tables)
    compile: bool = False
    threads: int | None = None
    use_ipex: bool = False
    tier: str = "basic"
    reasons: tuple[str, ...] = field(default=(), compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)  # LocalGenerator emits them as warnings
    decision: KernelDecision | None = field(default=None, compare=False)  # what auto measured, if it did

    @property
    def bf16_autocast(self) -> bool:
        """True when the model keeps fp32 weights and runs under bf16 autocast."""
        return self.dtype == "bfloat16" and self.bf16_mode == "autocast"

    @property
    def kernel(self) -> str:
        """``fp32``, ``bf16``, ``int8``, ``int8-weight`` or ``int8-dynamic``."""
        if self.quantize:
            return self.quantize
        return "bf16" if self.dtype == "bfloat16" else "fp32"

    def describe(self) -> str:
        parts = [self.dtype if self.quantize is None else f"{self.quantize} ({self.dtype} activations)"]
        if self.dtype == "bfloat16":
            parts.append(f"bf16 via {self.bf16_mode}")
        if self.compile:
            parts.append("torch.compile")
        if self.use_ipex:
            parts.append("IPEX")
        parts.append(f"threads={self.threads}")
        parts.append(f"cpu={self.tier}")
        if self.decision is not None:
            parts.append(self.decision.describe())
        return ", ".join(parts)


def plan_acceleration(
    caps: Mapping,
    options: AccelerationOptions | None = None,
    *,
    ipex_version: str | None = None,
    torch_version: str = "2.13.0",
    decision: KernelDecision | None = None,
    **overrides,
) -> AccelerationPlan:
    """Decide dtype, quantization, compile, threads and IPEX from a capability table. Pure: no torch needed.

    ``options`` / ``overrides``: an :class:`AccelerationOptions` and/or its fields as keywords (``dtype="auto"``).
    ``dtype="auto"`` with ``quantize="auto"`` (or ``None``): the kernel of ``decision`` (a measurement, see
    :mod:`~autorag_hp.generators.kernel_plan`); without one, bf16 where the CPU has native bf16, else fp32.
    An explicit dtype (``"float32"``, ``"bfloat16"``) with ``quantize="auto"`` is that dtype, unquantized.
    ``ipex``: None = use it if installed and compatible; False = never; True = require it (error if unusable).
    ``threads``: None = the number of physical cores in ``caps`` (or ``os.cpu_count()``).
    """
    opts = AccelerationOptions.of(options, **overrides)
    dtype, quantize, threads, ipex = opts.dtype, opts.quantize, opts.threads, opts.ipex
    if quantize == "auto" and dtype != "auto":
        quantize = None  # an explicit dtype is honoured as asked: nothing is left to choose
    reasons: list[str] = []
    warns: list[str] = []
    tier = cpu_tier(caps)
    auto = needs_measurement(dtype, quantize)
    if not auto:
        decision = None  # an explicit choice is honoured as asked
    if auto:
        if decision is not None:
            chosen, quantize = decision.dtype, decision.quantize
            reasons.append(decision.describe())
            reasons.extend(decision.reasons)
        else:
            quantize = None
            chosen = choose_dtype(caps, dtype)
            if dtype == "auto":
                reasons.append(
                    f"bf16: CPU has {'AMX' if tier == 'amx' else 'AVX-512-BF16'} (capability only, not measured)"
                    if chosen == "bfloat16"
                    else "fp32: CPU has neither amx_bf16 nor avx512_bf16 (bf16 would be slower)"
                )
    elif quantize in ("int8", "int8-dynamic"):
        if dtype == "bfloat16":
            raise ValueError(f"quantize={quantize!r} runs with fp32 activations; use dtype='auto' or 'float32' with it")
        chosen = "float32"
        reasons.append(
            "int8: nn.Linear as int8 weights x per-token int8 activations; other layers fp32"
            if quantize == "int8"
            else "int8-dynamic: torch.ao per-tensor dynamic int8 (legacy; ~+200 % perplexity on SmolLM2)"
        )
        if quantize == "int8" and not has_vnni(caps):
            warns.append(
                f"quantize='int8' on a CPU without VNNI ({_cpu_words(caps)}): torch._int_mm has no fast kernel "
                "here, so generation is several times slower than fp32 (5x on a real AVX2 CPU), and where oneDNN is "
                "capped at AVX2 (ONEDNN_MAX_CPU_ISA=AVX2) its int8 results are also inexact (+28 % perplexity on "
                "SmolLM2). The defaults quantize='auto', dtype='auto' pick the fastest kernel."
            )
    elif quantize == "int8-weight":
        if dtype == "float32":
            raise ValueError("quantize='int8-weight' computes in bf16; use dtype='auto' or 'bfloat16' with it, or "
                             "leave quantize out for plain fp32")
        if dtype == "auto" and not has_native_bf16(caps):
            raise ValueError(
                f"quantize='int8-weight' needs a CPU with native bf16 (amx_bf16 or avx512_bf16) to be fast, and "
                f"this one has none ({_cpu_words(caps)}). {_fast_here(caps)} Pass dtype='bfloat16' to force "
                "int8-weight anyway (slower than fp32 here)."
            )
        chosen = "bfloat16"
        reasons.append("int8-weight: int8 weights with bf16 activations; other layers bf16")
        if not has_native_bf16(caps):
            warns.append(f"quantize='int8-weight' without native bf16 ({_cpu_words(caps)}): slower than fp32 here. "
                         + _fast_here(caps))
    else:
        chosen = choose_dtype(caps, dtype)
        if chosen == "bfloat16" and not has_native_bf16(caps):
            reasons.append("bf16 requested without native support: expect it to be slower than fp32")
            warns.append(f"dtype='bfloat16' without native bf16 ({_cpu_words(caps)}): bf16 is emulated and "
                         f"slower than fp32 here. {_fast_here(caps)}")
    if threads is None:
        threads = int(caps.get("num_physical_cores") or os.cpu_count() or 1)
    ok, why = ipex_compatible(ipex_version, torch_version)
    if ipex is True and not ok:
        raise ValueError(f"ipex=True but IPEX cannot be used: {why}. Use ipex=None to fall back to plain torch.")
    use_ipex = bool(ok and ipex is not False)
    reasons.append(why if ipex is not False else "IPEX disabled by the caller")
    return AccelerationPlan(
        dtype=chosen,
        bf16_mode=opts.bf16_mode,
        quantize=quantize,
        compile=bool(opts.compile),
        threads=threads,
        use_ipex=use_ipex,
        tier=tier,
        reasons=tuple(reasons),
        warnings=tuple(warns),
        decision=decision,
    )


def _cpu_words(caps: Mapping) -> str:
    cap = caps.get("torch_cpu_capability")
    tier = cpu_tier(caps)
    return f"torch CPU capability {cap}, tier {tier}" if cap else f"tier {tier}"


def _fast_here(caps: Mapping) -> str:
    """What to use instead, naming only kernels that are fast on ``caps``."""
    fast = ["the defaults quantize='auto', dtype='auto' (they measure and pick the fastest kernel)",
            "dtype='float32' (plain fp32)"]
    if has_vnni(caps):
        fast.append("quantize='int8' (this CPU has VNNI)")
    return "Use " + ", or ".join(fast) + "."


def installed_ipex_version() -> str | None:
    """The installed IPEX version (from package metadata, without importing it), or None."""
    from importlib import metadata

    try:
        return metadata.version("intel-extension-for-pytorch")
    except metadata.PackageNotFoundError:
        return None


def apply_plan(model, plan: AccelerationPlan):
    """Apply ``plan`` to an eval-mode causal LM in place where possible; returns the (possibly new) model."""
    import warnings

    import torch

    if plan.threads:
        torch.set_num_threads(plan.threads)
    model.eval()
    if plan.quantize:
        from .int8 import int8_kernels_available, quantize_linears

        model = model.float() if plan.quantize != "int8-weight" else model.to(torch.bfloat16)
        native = plan.quantize != "int8-dynamic" and int8_kernels_available()
        if native:
            quantize_linears(model, plan.quantize)
        elif plan.quantize != "int8-weight":  # the legacy option, or torch builds without torch._int_mm
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.ao dynamic quantization is deprecated
                from torch.ao.quantization import quantize_dynamic

                model = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        else:  # pragma: no cover
            raise RuntimeError("quantize='int8-weight' needs torch._weight_int8pack_mm (torch >= 2.3)")
    elif plan.dtype == "bfloat16" and plan.bf16_mode == "weights":
        model = model.to(torch.bfloat16)
    else:
        model = model.float()
    if plan.use_ipex:  # pragma: no cover - needs an IPEX matching torch, not installable with torch 2.13
        import intel_extension_for_pytorch as ipex

        ipex_dtype = torch.bfloat16 if plan.dtype == "bfloat16" else torch.float32
        model = ipex.llm.optimize(model, dtype=ipex_dtype, inplace=True)
    if plan.compile:
        model.forward = torch.compile(model.forward, dynamic=True)
    return model
