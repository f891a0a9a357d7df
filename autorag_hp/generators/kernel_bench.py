"""Step 2 of ``quantize="auto"`` (:mod:`autorag_hp.generators.kernel_plan`): the micro-benchmark that times each
candidate kernel on the model's own ``nn.Linear`` shapes (:class:`LinearKernelBench`), and the model's linear
layers in forward order (:func:`linear_layers`). Needs torch (imported inside the functions that use it).
"""

from __future__ import annotations

import time


def _kernel_module(kernel: str, linear):
    """A layer of ``linear``'s shape running ``kernel``: ``linear`` itself for fp32, else a layer with constant
    weights (kernel speed does not depend on the values; building it quantizes nothing, so it is quick)."""
    import torch

    from .int8 import Int8DynamicLinear, Int8WeightOnlyLinear

    i, o = linear.in_features, linear.out_features
    if kernel == "fp32":
        return linear
    if kernel == "int8-weight" and not Int8WeightOnlyLinear.supports(i, o):
        kernel = "bf16"  # what quantize_linears leaves such a layer as
    if kernel == "bf16":
        m = torch.nn.Linear(i, o, bias=False, device="meta", dtype=torch.bfloat16).to_empty(device="cpu")
        with torch.no_grad():
            m.weight.fill_(0.01)
        return m
    if kernel == "int8":
        return Int8DynamicLinear.blank(i, o)
    if kernel == "int8-weight":
        return Int8WeightOnlyLinear.blank(i, o)
    raise ValueError(f"unknown kernel {kernel!r}")


def _input_dtype(kernel: str):
    import torch

    return torch.bfloat16 if kernel in ("bf16", "int8-weight") else torch.float32


SWEEP_BYTES = 1 << 30  # decode sweeps cover the model's linear layers up to this many fp32 weight bytes


class LinearKernelBench:
    """The micro-benchmark: seconds per call of each kernel's layer (the real ``Int8DynamicLinear`` etc.,
    quantization of the activations included) for each (in, out, rows) item of a
    :func:`~autorag_hp.generators.kernel_plan.workload`.

    - **Decode (1 row)** is memory-bound, so what matters is whether the *whole model's* weights in that kernel
      stay in cache: one row is swept through all the model's linear layers in order (up to
      :data:`SWEEP_BYTES` of fp32 weights), as a decode step does, and each shape's time is its mean per call in
      the sweep. (On a CPU with a 300 MB L3, SmolLM2's int8 or bf16 linear weights fit it, its fp32 ones do not.)
    - **Prefill (many rows)** is compute-bound: one layer per shape, called repeatedly.

    Best of several runs after a warm-up, kernels interleaved so load from other processes hits all alike; a
    kernel still more than 10x slower than the reference after three runs is not run again on an item (it
    cannot win). ``layers``: the model's ``nn.Linear`` modules as (module, is_head) in forward order; without
    them, one seeded random layer per shape (no sweep). Kernel copies are built once per instance and reused
    by the confirming second pass.
    """

    def __init__(self, layers=None, seed: int = 0, round_target_s: float = 0.02, sweep_target_s: float = 0.2):
        self.layers = list(layers) if layers is not None else None
        self.seed = seed
        self.round_target_s = round_target_s
        self.sweep_target_s = sweep_target_s
        self._copies: dict[str, list] = {}

    # -- layers and their kernel copies

    def _base_layers(self, items) -> list:
        if self.layers is None:
            import torch

            gen = torch.Generator().manual_seed(self.seed)
            self.layers = []
            for i, o in dict.fromkeys((i, o) for i, o, _, _ in items):
                lin = torch.nn.Linear(i, o, bias=False)
                with torch.no_grad():
                    lin.weight.copy_(torch.randn(o, i, generator=gen) * 0.02)
                self.layers.append((lin, False))
            self._sweep = False
        else:
            self._sweep = True
        return self.layers

    def _swept(self) -> list:
        """The layers a decode sweep covers: forward order, up to SWEEP_BYTES (the head if it fits)."""
        out, total, full = [], 0, False
        for lin, head in self.layers:
            size = lin.in_features * lin.out_features * 4
            if total + size > SWEEP_BYTES or (full and not head):
                full = full or not head  # body layers stop at the limit; a head that fits is still taken
                continue
            out.append((lin, head))
            total += size
        return out

    def _kernel_copies(self, kernel: str) -> list:
        if kernel not in self._copies:
            self._copies[kernel] = [(_kernel_module(kernel, lin), (lin.in_features, lin.out_features))
                                    for lin, _ in self._swept()]
        return self._copies[kernel]

    # -- timing

    def __call__(self, items, kernels, threads=None) -> dict[str, dict[tuple[int, int, int], float]]:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self._base_layers(items)
        gen = torch.Generator().manual_seed(self.seed + 1)
        out: dict[str, dict[tuple[int, int, int], float]] = {k: {} for k in kernels}
        with torch.inference_mode():
            copies = {}
            for k in kernels:
                try:
                    copies[k] = self._kernel_copies(k)
                except Exception:  # a kernel this torch build lacks: left unmeasured, never chosen
                    pass
            swept = {key for k in copies for _, key in copies[k]} if self._sweep else set()
            decode = [(i, o) for i, o, r, _ in items if r == 1 and (i, o) in swept]
            if decode:
                self._time_sweeps(copies, set(decode), out, gen)
            for i, o, r, _ in items:
                if r == 1 and (i, o) in swept:
                    continue
                mods = {}
                for k, cs in copies.items():
                    m = next((m for m, key in cs if key == (i, o)), None)
                    if m is None:  # a shape outside the sweep
                        lin = next(lin for lin, _ in self.layers if (lin.in_features, lin.out_features) == (i, o))
                        try:
                            m = _kernel_module(k, lin)
                        except Exception:
                            continue
                    mods[k] = m
                self._time_item(mods, kernels[0], torch.randn(r, i, generator=gen), (i, o, r), out)
        return out

    def _time_item(self, mods: dict, reference: str, x, key, out) -> None:
        xs = {k: x.to(_input_dtype(k)) for k in mods}
        best: dict[str, float] = {}
        for k, m in mods.items():
            try:
                m(xs[k])  # warm-up: oneDNN primitive creation, allocator
                t0 = time.perf_counter()
                m(xs[k])
                best[k] = time.perf_counter() - t0
            except Exception:
                pass
        if not best:
            return
        live = list(best)
        per_round = sum(best.values()) or 1e-6
        for n in range(max(4, min(10, int(self.round_target_s / per_round)))):
            if n == 2:  # three timings each: one still > 10x the reference's best cannot win; stop it
                base = best.get(reference, min(best.values()))
                live = [k for k in live if best[k] <= 10 * base]
            for k in live:
                t0 = time.perf_counter()
                mods[k](xs[k])
                best[k] = min(best[k], time.perf_counter() - t0)
        for k, t in best.items():
            out[k][key] = t

    def _time_sweeps(self, copies: dict, shapes: set, out, gen) -> None:
        import torch

        ins = {i for i, _ in shapes}
        xs = {k: {i: torch.randn(1, i, generator=gen).to(_input_dtype(k)) for i in ins} for k in copies}

        def sweep(k):
            sums: dict[tuple[int, int], float] = {}
            counts: dict[tuple[int, int], int] = {}
            clock = time.perf_counter
            for m, key in copies[k]:
                if key in shapes:
                    x = xs[k][key[0]]
                    t0 = clock()
                    m(x)
                    sums[key] = sums.get(key, 0.0) + clock() - t0
                    counts[key] = counts.get(key, 0) + 1
            return {key: sums[key] / counts[key] for key in sums}

        best: dict[str, dict] = {}
        cost = 0.0
        for k in list(copies):
            try:
                sweep(k)  # warm-up
                t0 = time.perf_counter()
                best[k] = sweep(k)
                cost += time.perf_counter() - t0
            except Exception:
                pass
        for _ in range(max(2, min(8, int(self.sweep_target_s / max(cost, 1e-6))))):
            for k in best:
                for key, t in sweep(k).items():
                    best[k][key] = min(best[k][key], t)
        for k, per in best.items():
            for (i, o), t in per.items():
                out[k][(i, o, 1)] = t


def measure_linear_kernels(items, kernels, threads=None, layers=None, seed: int = 0):
    """One run of :class:`LinearKernelBench` (``layers``: the model's, see there)."""
    return LinearKernelBench(layers, seed=seed)(items, kernels, threads)


def linear_layers(model) -> list:
    """The model's ``nn.Linear`` modules (the ones ``quantize_linears`` replaces) in forward order, as
    (module, is_head) pairs; the head is the output projection (lm_head)."""
    import torch

    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return [(m, m is head) for m in model.modules() if type(m) is torch.nn.Linear]
