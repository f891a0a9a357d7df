"""``quantize="auto"`` / ``dtype="auto"``: the fastest kernel for this CPU and model within the perplexity
allowed, never slower than fp32.

Four steps, each separately testable:

1. **Capability gates** (pure, :func:`kernel_candidates`): fp32 always; bf16 weights and int8-weight only with
   native bf16 (``amx_bf16`` / ``avx512_bf16``); int8 W8A8 (``torch._int_mm``) only with VNNI
   (``avx512_vnni``, ``avx_vnni`` or ``amx_int8``). Without them those kernels are emulated and many times
   slower than fp32 (on an AVX2-only CPU ``torch._int_mm`` is ~30x slower than an fp32 matmul), so no timing
   can bring them back. :func:`~autorag_hp.generators.capabilities.effective_capabilities` first removes the
   flags that torch / oneDNN were told not to use (``ATEN_CPU_CAPABILITY=avx2``, ``ONEDNN_MAX_CPU_ISA=AVX2``).
2. **A one-off micro-benchmark** (:mod:`~autorag_hp.generators.kernel_bench`) of the model's own ``nn.Linear``
   shapes, each distinct (in, out) once, at a decode shape (1 row) and a prefill shape (256 rows), for fp32 and
   every candidate, interleaved, best of a few runs, with the plan's thread count. Well under a second for
   SmolLM2-135M on 2 cores.
3. **The choice** (pure, :func:`choose_kernel`): the time of one generation (300 prompt tokens + 32 new tokens)
   is estimated from those timings, weighting each shape by how often it occurs; a candidate wins only when
   it is clearly faster than the reference (< 0.95x its time), otherwise the reference (fp32) stays.
4. **The quality gate** (:mod:`~autorag_hp.generators.quality_gate`, when ``decide_kernel`` gets ``quality``):
   the winners, fastest first, until one keeps the model's perplexity within ``max_ppl_increase`` of fp32's.

The decision is cached as JSON under the model cache (``<cache_root>/kernel-plans/``), keyed by the torch CPU
capability, the kernel-relevant flags, the oneDNN ISA limit, the model, its linear shapes, the thread count and
the torch version, so a second load costs nothing. Writes are atomic; a corrupt file is ignored and rewritten.

>>> caps = {"avx2": True, "avx512_f": True, "avx512_vnni": True, "avx512_bf16": False}
>>> kernel_candidates(caps)
['fp32', 'int8']
>>> items = [(576, 1536, 1, 32.0), (576, 1536, 256, 300 / 256)]
>>> timings = {"fp32": {(576, 1536, 1): 1e-4, (576, 1536, 256): 3e-3},
...            "int8": {(576, 1536, 1): 6e-5, (576, 1536, 256): 1e-3}}
>>> choose_kernel(["fp32", "int8"], estimate_all(timings, items)).kernel
'int8'
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .capabilities import has_native_bf16, has_vnni, relevant_flags
from .kernel_bench import LinearKernelBench, linear_layers
from .quality_gate import MAX_PPL_INCREASE, gate_winners, quality_key

# kernel name -> (dtype, quantize) for plan_acceleration
KERNELS: dict[str, tuple[str, str | None]] = {
    "fp32": ("float32", None),
    "bf16": ("bfloat16", None),
    "int8": ("float32", "int8"),
    "int8-weight": ("bfloat16", "int8-weight"),
}
MARGIN = 0.95  # a candidate must take < MARGIN x the reference's time
NOISE = 0.25  # the reference's estimate may differ this much between two passes, else the machine is too busy
PROMPT_TOKENS = 300
NEW_TOKENS = 32
PREFILL_ROWS = 256
PLAN_VERSION = 2  # bump when the benchmark or the estimate changes meaning: old cache entries are then ignored
PLANS_DIR = "kernel-plans"


def kernel_candidates(caps: Mapping, dtype: str = "auto", quantize: str | None = "auto") -> list[str]:
    """The kernels ``auto`` may choose on ``caps``; the first (fp32) is the reference the others must beat. Pure.

    Only ``dtype="auto"`` leaves a choice: an explicit dtype is honoured as asked (one candidate), and
    ``quantize=None`` rules out the int8 kernels (fp32 or bf16 remain).
    """
    return [k for k, why in _gates(caps, dtype, quantize) if why is None]


def gate_notes(caps: Mapping, dtype: str = "auto", quantize: str | None = "auto") -> list[str]:
    """Why each kernel that :func:`kernel_candidates` leaves out is left out (for the plan's reasons)."""
    return [f"{k}: {why}" for k, why in _gates(caps, dtype, quantize) if why is not None]


def _gates(caps: Mapping, dtype: str, quantize: str | None) -> list[tuple[str, str | None]]:
    if dtype != "auto":
        return [("bf16" if dtype == "bfloat16" else "fp32", None)]
    bf16 = has_native_bf16(caps)
    no_bf16 = "no native bf16 (amx_bf16 / avx512_bf16): emulated, slower than fp32"
    out: list[tuple[str, str | None]] = [("fp32", None), ("bf16", None if bf16 else no_bf16)]
    if quantize == "auto":
        out.append(("int8", None if has_vnni(caps) else "no VNNI (avx512_vnni / avx_vnni / amx_int8): "
                    "torch._int_mm is emulated, many times slower than fp32"))
        out.append(("int8-weight", None if bf16 else no_bf16))
    return out


# ------------------------------------------------------------------------------------------ shapes, workload


@dataclass(frozen=True)
class LinearShape:
    """One distinct ``nn.Linear`` shape of a model and how many layers have it. ``head``: the output
    projection (lm_head), which ``generate`` applies to the last prompt token only."""

    in_features: int
    out_features: int
    count: int
    head: bool = False


def linear_shapes(model_or_layers) -> tuple[LinearShape, ...]:
    """The distinct ``nn.Linear`` shapes of a model (or of :func:`linear_layers`' list) and their counts."""
    layers = model_or_layers if isinstance(model_or_layers, list) else linear_layers(model_or_layers)
    counts: dict[tuple[int, int, bool], int] = {}
    for module, head in layers:
        key = (module.in_features, module.out_features, head)
        counts[key] = counts.get(key, 0) + 1
    return tuple(LinearShape(i, o, n, h) for (i, o, h), n in sorted(counts.items()))


def workload(
    shapes: Iterable[LinearShape],
    prompt_tokens: int = PROMPT_TOKENS,
    new_tokens: int = NEW_TOKENS,
    prefill_rows: int = PREFILL_ROWS,
) -> list[tuple[int, int, int, float]]:
    """(in, out, rows, weight) items: one generation = sum of weight x time of an (in, out) matmul at ``rows``.

    Prefill is timed at ``prefill_rows`` and scaled to ``prompt_tokens``; each new token is one 1-row pass; the
    head sees one row per step, prefill included."""
    items: dict[tuple[int, int, int], float] = {}
    for s in shapes:
        if s.head:
            steps = [(1, float(s.count) * (1 + new_tokens))]
        else:
            steps = [(prefill_rows, s.count * prompt_tokens / prefill_rows), (1, float(s.count * new_tokens))]
        for rows, w in steps:
            key = (s.in_features, s.out_features, rows)
            items[key] = items.get(key, 0.0) + w
    return [(i, o, r, w) for (i, o, r), w in sorted(items.items())]


def estimate_all(timings: Mapping[str, Mapping], items: Sequence[tuple[int, int, int, float]]) -> dict[str, float]:
    """Estimated seconds of linear-layer work per generation for each kernel that has every item timed."""
    out = {}
    for kernel, t in timings.items():
        if all((i, o, r) in t for i, o, r, _ in items):
            out[kernel] = sum(w * float(t[(i, o, r)]) for i, o, r, w in items)
    return out


# ------------------------------------------------------------------------------------------ the decision


@dataclass(frozen=True)
class KernelDecision:
    """What ``auto`` chose and why: the estimated time per generation of each candidate, relative to the
    reference (the first candidate, fp32)."""

    kernel: str
    candidates: tuple[str, ...]
    estimates: dict = field(default_factory=dict, compare=False)  # kernel -> seconds (linear layers)
    reasons: tuple[str, ...] = field(default=(), compare=False)
    source: str = "measured"  # "measured", "cache" or "capability" (one candidate: nothing to measure)
    bench_s: float = field(default=0.0, compare=False)
    stable: bool = field(default=True, compare=False)  # False: timings too noisy to cache; measured again
    quality: dict = field(default_factory=dict, compare=False)  # kernel -> perplexity increase over fp32, if gated

    @property
    def reference(self) -> str:
        return self.candidates[0]

    @property
    def ratios(self) -> dict[str, float]:
        ref = self.estimates.get(self.reference)
        return {k: v / ref for k, v in self.estimates.items()} if ref else {}

    @property
    def dtype(self) -> str:
        return KERNELS[self.kernel][0]

    @property
    def quantize(self) -> str | None:
        return KERNELS[self.kernel][1]

    def describe(self) -> str:
        """E.g. ``auto: int8 (int8 0.52x, bf16 0.81x of fp32; measured in 0.6 s)``."""
        r = self.ratios
        others = [f"{k} {r[k]:.2f}x" for k in self.candidates[1:] if k in r]
        missing = [k for k in self.candidates[1:] if k not in r]
        how = {"measured": f"measured in {self.bench_s:.1f} s", "cache": "cached measurement",
               "capability": "only candidate on this CPU"}.get(self.source, self.source)
        if not self.stable:
            how += ", too noisy to cache: measured again at the next load"
        detail = (", ".join(others) + f" of {self.reference}; ") if others else ""
        detail += (", ".join(missing) + " not measured; ") if missing else ""
        detail += ("perplexity " + ", ".join(f"{k} {v:+.1%}" for k, v in self.quality.items()) + "; "
                   if self.quality else "")
        return f"auto: {self.kernel} ({detail}{how})"

    def to_json(self) -> dict:
        return {"kernel": self.kernel, "candidates": list(self.candidates), "estimates": dict(self.estimates),
                "reasons": list(self.reasons), "bench_s": self.bench_s, "quality": dict(self.quality)}

    @classmethod
    def from_json(cls, data: Mapping, source: str = "cache") -> KernelDecision:
        kernel, cands = str(data["kernel"]), tuple(str(c) for c in data["candidates"])
        if kernel not in KERNELS or kernel not in cands or any(c not in KERNELS for c in cands):
            raise ValueError(f"unknown kernel in {data!r}")
        est = {str(k): float(v) for k, v in dict(data.get("estimates", {})).items()}
        quality = {str(k): float(v) for k, v in dict(data.get("quality", {})).items()}
        return cls(kernel=kernel, candidates=cands, estimates=est, reasons=tuple(str(r) for r in data["reasons"]),
                   source=source, bench_s=float(data.get("bench_s", 0.0)), quality=quality)


def choose_kernel(
    candidates: Sequence[str], estimates: Mapping[str, float], margin: float = MARGIN
) -> KernelDecision:
    """The candidate with the lowest estimate if it is below ``margin`` x the reference's (``candidates[0]``);
    otherwise the reference. Candidates without an estimate (their benchmark failed) are never chosen. Pure."""
    if not candidates:
        raise ValueError("no kernel candidates")
    ref = candidates[0]
    reasons: list[str] = []
    ref_t = estimates.get(ref)
    if ref_t is None or ref_t <= 0:
        return KernelDecision(ref, tuple(candidates), dict(estimates),
                              (f"{ref}: the reference could not be measured; kept it",), "measured")
    best, best_t = ref, ref_t
    for k in candidates[1:]:
        t = estimates.get(k)
        if t is None:
            reasons.append(f"{k}: could not be measured, not chosen")
            continue
        ratio = t / ref_t
        verdict = "faster" if ratio < margin else "not clearly faster"
        reasons.append(f"{k}: {ratio:.2f}x the time of {ref} ({verdict}; needs < {margin:.2f}x)")
        if ratio < margin and t < best_t:
            best, best_t = k, t
    head = (f"chose {best}: {best_t / ref_t:.2f}x the estimated time of {ref} per generation"
            if best != ref else f"chose {ref}: no candidate is clearly faster")
    return KernelDecision(best, tuple(candidates), dict(estimates), (head, *reasons), "measured")


# ------------------------------------------------------------------------------------------ cache


def cache_key(
    caps: Mapping,
    *,
    model_id: str,
    shapes: Sequence[LinearShape],
    threads: int | None,
    torch_version: str,
    candidates: Sequence[str],
    aten_capability: str | None = None,
    onednn_max_isa: str | None = None,
    quality: Sequence | None = None,
) -> dict:
    """Everything the decision depends on, as a JSON-able dict (``quality``: the perplexity gate's settings)."""
    return {
        "version": PLAN_VERSION,
        "cpu": str(caps.get("cpu_name", "")),
        "torch_cpu_capability": aten_capability or "",
        "onednn_max_cpu_isa": onednn_max_isa or "",
        "flags": relevant_flags(caps),
        "model": model_id,
        "shapes": [[s.in_features, s.out_features, s.count, s.head] for s in shapes],
        "threads": threads,
        "torch": torch_version,
        "candidates": list(candidates),
        "workload": [PROMPT_TOKENS, NEW_TOKENS, PREFILL_ROWS, MARGIN, NOISE],
        "quality": list(quality) if quality is not None else None,
    }


def cache_file(root: str | os.PathLike, key: Mapping) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return Path(root) / PLANS_DIR / f"{digest}.json"


def read_cached(path: Path, key: Mapping) -> KernelDecision | None:
    """The cached decision for ``key``, or None when missing, corrupt or for another key."""
    try:
        data = json.loads(Path(path).read_text())
        if data.get("key") != json.loads(json.dumps(key)):
            return None
        return KernelDecision.from_json(data["decision"], source="cache")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_cached(path: Path, key: Mapping, decision: KernelDecision) -> None:
    """Atomically (temporary file in the same folder, then ``os.replace``) store ``decision`` for ``key``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"key": key, "decision": decision.to_json(), "created": time.time()}, indent=1)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ------------------------------------------------------------------------------------------ orchestration


Bench = Callable[[Sequence[tuple[int, int, int, float]], Sequence[str], "int | None"], Mapping[str, Mapping]]


def decide_kernel(
    shapes: Sequence[LinearShape],
    caps: Mapping,
    *,
    dtype: str = "auto",
    quantize: str | None = "auto",
    threads: int | None = None,
    cache_root: str | os.PathLike | None = None,
    model_id: str = "",
    torch_version: str = "",
    aten_capability: str | None = None,
    onednn_max_isa: str | None = None,
    bench: Bench | None = None,
    layers=None,
    quality: Callable[[str], float] | None = None,
    max_ppl_increase: float = MAX_PPL_INCREASE,
) -> KernelDecision:
    """Gates, then the cached decision, else the micro-benchmark (``bench``, default a
    :class:`LinearKernelBench` over ``layers``, the model's :func:`linear_layers`) and :func:`choose_kernel`,
    whose result is then cached. ``quality(kernel)``, when given, is the model's perplexity increase under that
    kernel over fp32 (:class:`~autorag_hp.generators.quality_gate.PerplexityGate`): a faster kernel over
    ``max_ppl_increase`` is not chosen."""
    cands = kernel_candidates(caps, dtype, quantize)
    notes = tuple(gate_notes(caps, dtype, quantize))
    if len(cands) == 1:
        return KernelDecision(cands[0], tuple(cands), {}, (f"chose {cands[0]}: the only candidate here", *notes),
                              "capability")
    key = cache_key(caps, model_id=model_id, shapes=shapes, threads=threads, torch_version=torch_version,
                    candidates=cands, aten_capability=aten_capability, onednn_max_isa=onednn_max_isa,
                    quality=quality_key(max_ppl_increase) if quality is not None else None)
    path = cache_file(cache_root, key) if cache_root is not None else None
    if path is not None:
        hit = read_cached(path, key)
        if hit is not None:
            return hit
    items = workload(shapes)
    run = bench or LinearKernelBench(layers)
    t0 = time.perf_counter()
    first = estimate_all(run(items, cands, threads), items)
    ref = cands[0]
    ref1 = first.get(ref)
    fast = [k for k in cands[1:] if ref1 and k in first and first[k] / ref1 < MARGIN]
    # A second, independent pass of the reference and every candidate that won the first: a shared or busy
    # machine can make one pass lie. A candidate is chosen only if it wins in both passes (kernels are
    # interleaved within a pass, so their ratio survives slow load changes); the lowest mean ratio wins.
    again = estimate_all(run(items, [ref, *fast], threads), items)
    ref2 = again.get(ref)
    ratios = {k: (first[k] / ref1 + again[k] / ref2) / 2 for k in fast if ref2 and k in again}
    confirmed = {k: r for k, r in ratios.items() if again[k] / ref2 < MARGIN}
    winners, quality_notes, measured = gate_winners(confirmed, quality, max_ppl_increase, cands)
    estimates = dict(first)
    for k in [ref, *fast]:
        if k in again and ref1 and ref2:
            estimates[k] = (first[k] + again[k] * ref1 / ref2) / 2  # pass 2 rescaled to pass 1's reference
    chosen = choose_kernel(cands, estimates)
    reasons = list(chosen.reasons[1:])
    stable = True
    if winners:
        win = min(winners, key=lambda k: (winners[k], cands.index(k)))
        reasons.insert(0, f"chose {win}: {winners[win]:.2f}x the estimated time of {ref} per generation (mean of "
                          f"two passes, both < {MARGIN:.2f}x)")
    else:
        win = ref
        drift = ref2 / ref1 if ref1 and ref2 else None
        lost = [f"{k} {again[k] / ref2:.2f}x" if ref2 and k in again else f"{k} not measured" for k in fast]
        if confirmed:
            head = f"chose {ref}: {', '.join(confirmed)} faster, but over the perplexity allowed"
        elif lost:  # the passes disagree: keep fp32 now, but do not make it permanent
            stable = False
            head = (f"chose {ref}: {', '.join(fast)} won the first pass but not the second ({', '.join(lost)}); "
                    "the passes disagree, so it is measured again at the next load")
        elif drift is None or abs(drift - 1) > NOISE:
            stable = False
            head = (f"chose {ref}: no candidate is clearly faster, but {ref} timed "
                    + (f"{drift:.2f}x" if drift else "unmeasured")
                    + f" in the second pass against the first (allowed: +-{NOISE:.0%}): the machine is too busy "
                    "to trust this, so it is measured again at the next load")
        else:
            head = f"chose {ref}: no candidate is clearly faster"
        reasons.insert(0, head)
    elapsed = time.perf_counter() - t0
    decision = KernelDecision(win, tuple(cands), estimates, (*reasons[:1], *quality_notes, *reasons[1:], *notes),
                              "measured", round(elapsed, 3), stable, measured)
    if path is not None and stable:
        try:
            write_cached(path, key, decision)
        except OSError:  # a read-only cache: measure again next time
            pass
    return decision
