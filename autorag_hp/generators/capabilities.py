"""What this CPU can do, as torch will use it: the capability table (``torch.cpu.get_capabilities()``) without
the flags that ``ATEN_CPU_CAPABILITY`` / ``ONEDNN_MAX_CPU_ISA`` mask (:func:`effective_capabilities`), the flags
that choose kernels (:data:`RELEVANT_FLAGS`), native bf16 and VNNI, a short tier name, and the CPU fingerprint
recorded beside float results. Everything but :func:`cpu_capabilities`, :func:`torch_cpu_capability` and
:func:`cpu_fingerprint` is pure over a capability dict, so faked tables stand for machines we do not have.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# The environment variables that cap the kernels torch / oneDNN / MKL use (recorded beside results).
ISA_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
# The capability flags that decide which kernels are fast (recorded with every decision and in the cache key).
RELEVANT_FLAGS = ("amx_bf16", "amx_int8", "amx_tile", "avx512_bf16", "avx512_vnni", "avx_vnni", "avx512_f", "avx2")

# oneDNN's ISA levels, lowest first (ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA); aliases map to the same level.
_ONEDNN_LEVELS = {
    "SSE41": 0, "AVX": 1, "AVX2": 2, "AVX2_VNNI": 3, "AVX2_VNNI_2": 4, "AVX512_CORE": 5, "AVX512_CORE_VNNI": 6,
    "AVX512_CORE_BF16": 7, "AVX512_CORE_FP16": 8, "AVX10_1_512": 8, "AVX512_CORE_AMX": 9, "AVX10_1_512_AMX": 9,
    "AVX512_CORE_AMX_FP16": 10, "AVX10_1_512_AMX_FP16": 10, "ALL": 99,
}


def _is_wide(flag: str) -> bool:
    return flag.startswith(("avx512", "amx", "avx10"))


def effective_capabilities(
    caps: Mapping, aten_capability: str | None = None, onednn_max_isa: str | None = None
) -> dict:
    """``caps`` without the flags that torch's kernels will not use here. Pure.

    ``aten_capability`` is ``torch.backends.cpu.get_cpu_capability()`` (``"AVX512"``, ``"AVX2"``, ``"DEFAULT"``,
    ...): ``ATEN_CPU_CAPABILITY=avx2`` makes it ``"AVX2"`` although the CPU still reports AVX-512 and AMX, and
    then AVX-512 / AMX flags are treated as absent. ``onednn_max_isa`` is ``$ONEDNN_MAX_CPU_ISA``: oneDNN runs
    the bf16 and int8 matmuls and uses no instruction above that level.

    >>> effective_capabilities({"amx_bf16": True, "avx512_vnni": True, "avx2": True}, "AVX2")
    {'amx_bf16': False, 'avx512_vnni': False, 'avx2': True}
    >>> effective_capabilities({"avx_vnni": True, "avx2": True}, "AVX2", "AVX2")["avx_vnni"]
    False
    """
    out = dict(caps)
    cap = (aten_capability or "").upper()
    if cap and cap not in ("AVX512", "ZVECTOR", "SVE256", "SVE"):  # AVX2, DEFAULT, ...
        for k in out:
            if _is_wide(k) and isinstance(out[k], bool):
                out[k] = False
        if cap == "DEFAULT":
            for k in ("avx2", "avx_vnni"):
                if k in out:
                    out[k] = False
    level = _ONEDNN_LEVELS.get((onednn_max_isa or "").strip().upper())
    if level is not None:
        drop: list[str] = []
        if level < _ONEDNN_LEVELS["AVX2_VNNI"]:
            drop += ["avx_vnni"]
        if level < _ONEDNN_LEVELS["AVX512_CORE"]:
            drop += [k for k in out if _is_wide(k)]
        if level < _ONEDNN_LEVELS["AVX512_CORE_VNNI"]:
            drop += ["avx512_vnni"]
        if level < _ONEDNN_LEVELS["AVX512_CORE_BF16"]:
            drop += ["avx512_bf16"]
        if level < _ONEDNN_LEVELS["AVX512_CORE_AMX"]:
            drop += [k for k in out if k.startswith("amx")]
        for k in drop:
            if isinstance(out.get(k), bool):
                out[k] = False
    return out


def relevant_flags(caps: Mapping) -> list[str]:
    """The kernel-relevant flags that are set, in :data:`RELEVANT_FLAGS` order."""
    return [k for k in RELEVANT_FLAGS if caps.get(k)]


def torch_cpu_capability() -> str:
    """``torch.backends.cpu.get_cpu_capability()``: the vector ISA ATen's kernels use (``AVX512``, ``AVX2``,
    ``DEFAULT``, ...); ``ATEN_CPU_CAPABILITY`` lowers it. Empty if unavailable."""
    import torch

    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # pragma: no cover - very old or exotic builds
        return ""


def onednn_max_isa() -> str | None:
    """The ISA limit oneDNN was given (``$ONEDNN_MAX_CPU_ISA`` or the older ``$DNNL_MAX_CPU_ISA``), if any."""
    return os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or None


def cpu_capabilities(effective: bool = True) -> dict:
    """The capability table of this CPU, from ``torch.cpu.get_capabilities()`` (empty if unavailable).

    ``effective=True`` (the default) treats as absent the flags torch will not use here (an AVX-512 CPU run with
    ``ATEN_CPU_CAPABILITY=avx2`` or ``ONEDNN_MAX_CPU_ISA=AVX2``), see
    :func:`effective_capabilities`, and adds ``torch_cpu_capability`` and
    ``onednn_max_cpu_isa`` to the table."""
    import torch

    get = getattr(torch.cpu, "get_capabilities", None)
    try:
        caps = dict(get()) if get else {}
    except Exception:  # pragma: no cover - very old or exotic builds
        caps = {}
    if not effective:
        return caps
    cap, isa = torch_cpu_capability(), onednn_max_isa()
    caps = effective_capabilities(caps, cap, isa)
    caps["torch_cpu_capability"] = cap
    caps["onednn_max_cpu_isa"] = isa or ""
    return caps


def has_native_bf16(caps: Mapping) -> bool:
    """True when the CPU computes bf16 natively: AMX tiles (``amx_bf16``) or AVX-512-BF16 (``avx512_bf16``)."""
    return bool(caps.get("amx_bf16") or caps.get("avx512_bf16"))


def has_vnni(caps: Mapping) -> bool:
    """True when int8 dot products are native (``avx512_vnni``, ``avx_vnni`` or ``amx_int8``): only then is
    ``quantize="int8"`` (``torch._int_mm``) faster than fp32."""
    return bool(caps.get("avx512_vnni") or caps.get("avx_vnni") or caps.get("amx_int8"))


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
    fp = {
        "capability": torch_cpu_capability(),
        "flags": sorted(relevant_flags(caps)),
        "torch": torch.__version__,
        "cpu": str(caps.get("cpu_name") or platform.processor() or platform.machine()),
    }
    env = {k: os.environ[k] for k in ISA_ENV if os.environ.get(k)}
    if env:
        fp["isa_env"] = env
    return fp
