"""The quality half of ``auto``: a kernel the micro-benchmark finds faster than fp32 is chosen only if the model
under it stays within ``max_ppl_increase`` of fp32's perplexity on a calibration text.

Speed alone chose int8 (W8A8) on the AMX Xeon and the AVX-512-BF16 EPYC, where it raised SmolLM2-135M's held-out
perplexity by 4.8 % and 4.2 % (``eval/results/generator_bench_*.md``), over the 2 % the generator benchmark holds
every variant to. The gate measures it on this model: the first :data:`CALIBRATION_TOKENS` tokens of the bundled
Python glossary (not the tutorial the benchmark reports perplexity on), under fp32 and under each candidate that
won the speed race, fastest first, until one passes. Each candidate runs on its own copy of the module tree that
shares the loaded model's weights, converted under torch's "new parameters on conversion" switch, so the loaded
model is untouched and only the candidate's converted weights are new memory. The outcome is cached with the
kernel decision (``kernel_plan``), so only the first load per CPU kind, model and thread count pays for it. On
a 2-core AVX-512-BF16 EPYC: SmolLM2-135M +4 s (2 threads; +5.5 s at 1) and +0.6 GB of peak RSS (2.1 GB),
Qwen2.5-Coder-0.5B +12 s and +2.8 GB (6.9 GB; 7.7 GB with a full copy of the model per candidate).
``max_ppl_increase=None`` skips it.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
from collections.abc import Callable
from typing import Any

MAX_PPL_INCREASE = 0.02  # the generator benchmark's quality target: perplexity within 2 % of fp32
CALIBRATION_TOKENS = 256
CALIBRATION_DOC = "glossary.rst"  # of the bundled python_docs corpus


def model_perplexity(model, ids, window: int = 512, bf16_autocast: bool = False) -> float:
    """Perplexity of a causal LM on the 1-D token ids ``ids``, in windows of ``window`` tokens."""
    import torch

    nll, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, ids.shape[0] - 1, window):
            chunk = ids[start : start + window + 1].unsqueeze(0)
            if chunk.shape[1] < 2:
                break
            with torch.autocast("cpu", dtype=torch.bfloat16) if bf16_autocast else contextlib.nullcontext():
                logits = model(input_ids=chunk[:, :-1]).logits
            loss = torch.nn.functional.cross_entropy(logits[0].float(), chunk[0, 1:], reduction="sum")
            nll += float(loss)
            count += chunk.shape[1] - 1
    return math.exp(nll / count)


def calibration_ids(tokenizer, tokens: int = CALIBRATION_TOKENS):
    """The first ``tokens`` token ids of the bundled Python glossary."""
    from autorag_hp.rag.data import load_bundled_corpus

    text = next(d.text for d in load_bundled_corpus("python_docs") if d.id == CALIBRATION_DOC)
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"][0]
    return ids[:tokens]


class PerplexityGate:
    """``gate(kernel)`` -> the relative perplexity increase of ``model`` under ``kernel`` over fp32 (0.042 =
    +4.2 %). ``apply(model, kernel)`` returns a copy of the model running that kernel (with whether it autocasts
    to bf16); ``model`` is the loaded fp32 model, read only. Results are memoized per kernel."""

    def __init__(self, model, tokenizer, apply: Callable[[Any, str], tuple[Any, bool]],
                 tokens: int = CALIBRATION_TOKENS):
        self.model, self.apply, self.tokenizer, self.tokens = model, apply, tokenizer, tokens
        self.increase: dict[str, float] = {}
        self._ids = None  # read when first measured: a cached decision needs no text
        self._reference: float | None = None

    @property
    def ids(self):
        if self._ids is None:
            self._ids = calibration_ids(self.tokenizer, self.tokens)
        return self._ids

    def reference(self) -> float:
        if self._reference is None:
            self._reference = model_perplexity(self.model, self.ids)
        return self._reference

    def __call__(self, kernel: str) -> float:
        if kernel not in self.increase:
            ref = self.reference()
            with new_parameters_on_conversion():
                variant, autocast = self.apply(shared_copy(self.model), kernel)
            ppl = model_perplexity(variant, self.ids, bf16_autocast=autocast)
            del variant
            self.increase[kernel] = ppl / ref - 1.0
        return self.increase[kernel]


def shared_copy(model):
    """A copy of ``model``'s module tree whose parameters and buffers are ``model``'s own (no weight copied)."""
    memo = {id(t): t for t in itertools.chain(model.parameters(), model.buffers())}
    return copy.deepcopy(model, memo)


@contextlib.contextmanager
def new_parameters_on_conversion():
    """``module.to(dtype)`` / ``.float()`` give the module new parameters instead of converting the shared ones
    in place (``torch.__future__``), so converting a :func:`shared_copy` leaves the original as it was."""
    import torch

    before = torch.__future__.get_overwrite_module_params_on_conversion()
    torch.__future__.set_overwrite_module_params_on_conversion(True)
    try:
        yield
    finally:
        torch.__future__.set_overwrite_module_params_on_conversion(before)


def quality_key(max_ppl_increase: float) -> list:
    """What a gated kernel decision depends on beyond the timings (part of its cache key)."""
    return [max_ppl_increase, CALIBRATION_TOKENS, CALIBRATION_DOC]


def gate_winners(winners: dict[str, float], gate: Callable[[str], float] | None, limit: float,
                 order: list[str]) -> tuple[dict[str, float], list[str], dict[str, float]]:
    """The speed winners (kernel -> time ratio to fp32) without those over the perplexity ``limit``, checked
    fastest first until one passes (slower ones need no check: the fastest passing one is chosen); the notes
    for the decision's reasons and the increases measured. ``gate=None``: no check."""
    if gate is None:
        return dict(winners), [], {}
    kept, notes, measured = dict(winners), [], {}
    ref = order[0]
    for k in sorted(winners, key=lambda k: (winners[k], order.index(k))):
        try:
            inc = gate(k)
        except Exception as exc:  # noqa: BLE001 - a kernel that cannot run here is not chosen; the load goes on
            notes.append(f"{k}: its perplexity could not be measured ({type(exc).__name__}: {exc}), not chosen")
            del kept[k]
            continue
        measured[k] = inc
        if inc <= limit:
            notes.append(f"{k}: perplexity {inc:+.1%} against {ref} on the calibration text (allowed {limit:+.0%})")
            break
        notes.append(f"{k}: perplexity {inc:+.1%} against {ref} on the calibration text, over the {limit:+.0%} "
                     "allowed: not chosen")
        del kept[k]
    return kept, notes, measured
