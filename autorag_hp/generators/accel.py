"""CPU acceleration decisions: dtype (bf16 only where the CPU has it), int8, torch.compile, threads, IPEX.

The decision logic is a pure function over a capability table (the dict that
``torch.cpu.get_capabilities()`` returns), so it can be tested with faked tables for machines we do not have
(an AMX Xeon, an AVX-512-only or an AVX2-only CPU)::

    >>> plan = plan_acceleration({"amx_bf16": True, "avx512_bf16": True}, dtype="auto")
    >>> plan.dtype
    'bfloat16'
    >>> plan_acceleration({"avx2": True}, dtype="auto").dtype
    'float32'

Why gate bf16: on CPUs without native bf16 dot products (``avx512_bf16``) or AMX tiles (``amx_bf16``) oneDNN
emulates bf16 with conversions, which is slower than plain fp32.

intel-extension-for-pytorch (IPEX) has reached end of life and only supports torch <= 2.8; it is used only when
it is installed *and* its major.minor matches torch's. Everything else comes from PyTorch itself (oneDNN).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

DTYPES = ("auto", "float32", "bfloat16")
# "int8-dynamic" is torch.ao's per-tensor dynamic quantization, kept only to reproduce answers made with it (the
# ground-truth grid eval/results/grid_python_docs.*): it raises SmolLM2's perplexity by ~200 %; use "int8".
QUANTIZE = (None, "int8", "int8-weight", "int8-dynamic")
BF16_MODES = ("weights", "autocast")
IPEX_MAX_TORCH = (2, 8)


def cpu_capabilities() -> dict:
    """The capability table of this CPU, from ``torch.cpu.get_capabilities()`` (empty if unavailable)."""
    import torch

    get = getattr(torch.cpu, "get_capabilities", None)
    try:
        return dict(get()) if get else {}
    except Exception:  # pragma: no cover - very old or exotic builds
        return {}


def has_native_bf16(caps: Mapping) -> bool:
    """True when the CPU computes bf16 natively: AMX tiles (``amx_bf16``) or AVX-512-BF16 (``avx512_bf16``)."""
    return bool(caps.get("amx_bf16") or caps.get("avx512_bf16"))


def cpu_tier(caps: Mapping) -> str:
    """A short name for the best matmul path: ``amx``, ``avx512_bf16``, ``avx512``, ``avx2`` or ``basic``."""
    if caps.get("amx_bf16") and caps.get("amx_tile", True):
        return "amx"
    if caps.get("avx512_bf16"):
        return "avx512_bf16"
    if caps.get("avx512_f"):
        return "avx512"
    if caps.get("avx2"):
        return "avx2"
    return "basic"


def choose_dtype(caps: Mapping, requested: str = "auto") -> str:
    """``"bfloat16"`` or ``"float32"``: ``auto`` picks bf16 only where :func:`has_native_bf16`.

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
        return ", ".join(parts)


def plan_acceleration(
    caps: Mapping,
    *,
    dtype: str = "auto",
    bf16_mode: str = "weights",
    quantize: str | None = None,
    compile: bool = False,
    threads: int | None = None,
    ipex: bool | None = None,
    ipex_version: str | None = None,
    torch_version: str = "2.13.0",
) -> AccelerationPlan:
    """Decide dtype, quantization, compile, threads and IPEX from a capability table. Pure: no torch needed.

    ``ipex``: None = use it if installed and compatible; False = never; True = require it (error if unusable).
    ``threads``: None = the number of physical cores in ``caps`` (or ``os.cpu_count()``).
    """
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {QUANTIZE}, got {quantize!r}")
    if bf16_mode not in BF16_MODES:
        raise ValueError(f"bf16_mode must be one of {BF16_MODES}, got {bf16_mode!r}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1 (or None for one per physical core), got {threads}")
    reasons: list[str] = []
    tier = cpu_tier(caps)
    if quantize in ("int8", "int8-dynamic"):
        if dtype == "bfloat16":
            raise ValueError(f"quantize={quantize!r} runs with fp32 activations; use dtype='auto' or 'float32' with it")
        chosen = "float32"
        reasons.append(
            "int8: nn.Linear as int8 weights x per-token int8 activations; other layers fp32"
            if quantize == "int8"
            else "int8-dynamic: torch.ao per-tensor dynamic int8 (legacy; ~+200 % perplexity on SmolLM2)"
        )
    elif quantize == "int8-weight":
        if dtype == "float32":
            raise ValueError("quantize='int8-weight' computes in bf16; use dtype='auto' or 'bfloat16' with it")
        if dtype == "auto" and not has_native_bf16(caps):
            raise ValueError(
                "quantize='int8-weight' needs a CPU with native bf16 (amx_bf16 or avx512_bf16) to be fast; "
                "use quantize='int8' here, or dtype='bfloat16' to force it"
            )
        chosen = "bfloat16"
        reasons.append("int8-weight: int8 weights with bf16 activations; other layers bf16")
    else:
        chosen = choose_dtype(caps, dtype)
        if dtype == "auto":
            reasons.append(
                f"bf16: CPU has {'AMX' if tier == 'amx' else 'AVX-512-BF16'}"
                if chosen == "bfloat16"
                else "fp32: CPU has neither amx_bf16 nor avx512_bf16 (bf16 would be slower)"
            )
        elif chosen == "bfloat16" and not has_native_bf16(caps):
            reasons.append("bf16 requested without native support: expect it to be slower than fp32")
    if threads is None:
        threads = int(caps.get("num_physical_cores") or os.cpu_count() or 1)
    ok, why = ipex_compatible(ipex_version, torch_version)
    if ipex is True and not ok:
        raise ValueError(f"ipex=True but IPEX cannot be used: {why}. Use ipex=None to fall back to plain torch.")
    use_ipex = bool(ok and ipex is not False)
    reasons.append(why if ipex is not False else "IPEX disabled by the caller")
    return AccelerationPlan(
        dtype=chosen,
        bf16_mode=bf16_mode,
        quantize=quantize,
        compile=bool(compile),
        threads=threads,
        use_ipex=use_ipex,
        tier=tier,
        reasons=tuple(reasons),
    )


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


def cpu_fingerprint(caps: Mapping | None = None) -> dict:
    """The CPU kind that float results depend on, to record beside them (grid tables, benchmark files).

    ``{"capability": torch.backends.cpu.get_cpu_capability()`` (ATen's kernel level: ``"AVX512"``, ``"AVX2"``,
    ...), ``"flags"``: the sorted kernel-choosing flags this CPU has among avx2, avx512_f, avx512_vnni,
    avx512_bf16, avx_vnni, amx_tile, amx_bf16, amx_int8, ``"torch"``: its version, ``"cpu"``: the model name``}``
    plus ``"isa_env"`` when an environment variable caps the kernels (``ATEN_CPU_CAPABILITY``,
    ``ONEDNN_MAX_CPU_ISA``, ``DNNL_MAX_CPU_ISA``, ``MKL_ENABLE_INSTRUCTIONS``). Greedy LLM output is bit-identical
    only between runs whose capability, flags and ``isa_env`` agree. ``caps``: a capability table (default:
    :func:`cpu_capabilities`).
    """
    import platform

    import torch

    caps = cpu_capabilities() if caps is None else caps
    kernel_flags = ("avx2", "avx512_f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")
    fp = {
        "capability": torch.backends.cpu.get_cpu_capability(),
        "flags": sorted(f for f in kernel_flags if caps.get(f)),
        "torch": torch.__version__,
        "cpu": str(caps.get("cpu_name") or platform.processor() or platform.machine()),
    }
    env = {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA",
                                      "MKL_ENABLE_INSTRUCTIONS") if os.environ.get(k)}
    if env:
        fp["isa_env"] = env
    return fp
