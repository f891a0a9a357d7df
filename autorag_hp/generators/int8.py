"""Int8 linear layers for CPU inference (imported only when ``quantize=`` asks for them).

- :class:`Int8DynamicLinear` (``quantize="int8"``): int8 weights with one scale per output channel, and
  activations quantized *per token* at run time; the matmul is ``torch._int_mm`` (int8 x int8 -> int32,
  oneDNN/VNNI). Per-token activation scales keep a single outlier token from flattening the rest, which is
  what ruins ``torch.ao.quantization.quantize_dynamic`` (one scale per tensor) on small LLMs: on
  SmolLM2-135M it moved held-out perplexity by +200 % or more, this layer by a few percent.
- :class:`Int8WeightOnlyLinear` (``quantize="int8-weight"``): int8 weights, bf16 activations, through
  ``torch._weight_int8pack_mm``; quality close to bf16, half the weight memory of bf16. Only fast with native
  bf16 (AMX / AVX-512-BF16).
"""

from __future__ import annotations

import torch


def _quantize_weight(weight) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(weight, _Blank):  # timing only: any values will do
        out, inp = weight.shape
        q = torch.ones((inp, out), dtype=torch.int8).t() if weight.transposed else torch.ones((out, inp), dtype=torch.int8)
        return q, torch.full((out,), 0.01)
    w = weight.detach().float()
    scale = w.abs().amax(dim=1).clamp(min=1e-8) / 127.0
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


class _Int8Base(torch.nn.Module):
    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        bias = linear.bias
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())

    @classmethod
    def blank(cls, in_features: int, out_features: int, **kwargs):
        """A layer of this shape with constant weights, built without quantizing anything: for timing the
        kernel (its speed does not depend on the values), see :mod:`autorag_hp.generators.kernel_bench`."""
        stand_in = _BlankLinear(in_features, out_features)
        stand_in.weight.transposed = cls is Int8DynamicLinear
        return cls(stand_in, **kwargs)


class _BlankLinear:
    """Stands in for an ``nn.Linear`` in the constructors below: weight = a constant (no allocation work
    beyond one fill), no bias."""

    def __init__(self, in_features: int, out_features: int):
        self.in_features, self.out_features, self.bias = in_features, out_features, None
        self.weight = _Blank((out_features, in_features))


class _Blank:
    def __init__(self, shape, transposed: bool = False):
        self.shape, self.transposed = shape, transposed  # transposed: stored [in, out] (what _int_mm takes)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Int8DynamicLinear(_Int8Base):
    """W8A8: per-channel int8 weights, per-token dynamic int8 activations, int32 accumulation."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__(linear)
        q, scale = _quantize_weight(linear.weight)
        self.register_buffer("weight_t", q.t().contiguous())  # [in, out] for _int_mm
        self.register_buffer("weight_scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).float()
        sx = x2.abs().amax(dim=-1, keepdim=True).clamp(min=1e-8) / 127.0
        xq = torch.round(x2 / sx).clamp(-127, 127).to(torch.int8)
        y = torch._int_mm(xq, self.weight_t).float() * sx * self.weight_scale
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features).to(x.dtype)


class Int8WeightOnlyLinear(_Int8Base):
    """W8A16: per-channel int8 weights, bf16 activations (``torch._weight_int8pack_mm``).

    Only for ``in_features`` divisible by 16: torch 2.13's CPU kernel crashes the process (SIGSEGV) on other
    widths, so :func:`quantize_linears` leaves such layers in bf16 (see :meth:`supports`)."""

    @staticmethod
    def supports(in_features: int, out_features: int) -> bool:
        return in_features % 16 == 0

    def __init__(self, linear: torch.nn.Linear, compute_dtype: torch.dtype = torch.bfloat16):
        super().__init__(linear)
        q, scale = _quantize_weight(linear.weight)
        self.compute_dtype = compute_dtype
        self.register_buffer("weight_q", q.contiguous())  # [out, in]
        self.register_buffer("weight_scale", scale.to(compute_dtype))
        if self.bias is not None:
            self.bias = self.bias.to(compute_dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).to(self.compute_dtype)
        y = torch._weight_int8pack_mm(x2, self.weight_q, self.weight_scale)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features).to(x.dtype)


def int8_kernels_available() -> bool:
    return hasattr(torch, "_int_mm") and hasattr(torch, "_weight_int8pack_mm")


def quantize_linears(model: torch.nn.Module, mode: str, skip: tuple[str, ...] = ()) -> int:
    """Replace every ``nn.Linear`` (except names in ``skip``, and shapes the kernel cannot take) in place; returns
    how many were replaced."""
    make = {"int8": Int8DynamicLinear, "int8-weight": Int8WeightOnlyLinear}[mode]
    fits = getattr(make, "supports", lambda i, o: True)
    n = 0
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            full = f"{parent_name}.{child_name}" if parent_name else child_name
            if type(child) is torch.nn.Linear and full not in skip and fits(child.in_features, child.out_features):
                setattr(parent, child_name, make(child))
                n += 1
    return n
