"""Generators the pipeline can use, all meeting :class:`autorag_hp.generators.base.Generator`:

- :class:`ExtractiveGenerator`: no LLM; the answer is the best-ranked passage (fast retrieval-only mode);
- :class:`ChatModelGenerator`: any LangChain ``BaseChatModel`` (e.g. ``ChatOpenAI(base_url=...)``);
- the local instruct model from :func:`autorag_hp.generators.default_generator` (SmolLM2-135M by default).

>>> gen = ExtractiveGenerator()
>>> gen.generate("[1] (source: a)\\nLists are mutable.\\n\\nQuestion: are lists mutable?").text
'Lists are mutable.'
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from autorag_hp.generators.base import Generation, Messages, Sampling
from autorag_hp.rag.errors import PipelineSpecError
from autorag_hp.rag.prompts import passages_in


def _words(text: str) -> int:
    # rough token count: words, plus one per CJK character (which has no spaces)
    return len(text.split()) + sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")


class ExtractiveGenerator:
    """Returns the first context passage, cut to ``max_new_tokens`` words. No model, no LLM call."""

    llm_calls = 0
    name = "extractive"
    ignores = ("prompt", "temperature")  # config keys that never change its answer (the tuner leaves them out)

    def generate(self, messages: Messages | str, sampling: Sampling | None = None, **overrides) -> Generation:
        s = Sampling.of(sampling, **overrides)
        t0 = time.perf_counter()
        passages = passages_in(messages)
        text = passages[0][1] if passages else ""
        words = text.split(" ")
        if len(words) > s.max_new_tokens:
            text = " ".join(words[:s.max_new_tokens])
        return Generation(text, 0, _words(text), time.perf_counter() - t0)

    def stream(self, messages: Messages | str, sampling: Sampling | None = None, **overrides) -> Iterator[str]:
        yield self.generate(messages, sampling, **overrides).text


class ChatModelGenerator:
    """Adapts a LangChain chat model to the Generator protocol.

    Each call uses its own copy of the model with ``temperature`` / ``max_tokens`` set (a pydantic
    ``model_copy``), so concurrent calls with different settings never share state.
    """

    llm_calls = 1

    def __init__(self, model: Any):
        from langchain_core.language_models import BaseChatModel

        if not isinstance(model, BaseChatModel):
            raise TypeError(f"expected a LangChain BaseChatModel, got {type(model).__name__}")
        self.model = model
        self.name = type(model).__name__
        fields = set(getattr(type(model), "model_fields", {}))
        self._temp = "temperature" if "temperature" in fields else None
        self._max = next((f for f in ("max_tokens", "max_new_tokens", "num_predict", "max_output_tokens")
                          if f in fields), None)

    def _configured(self, temperature: float, max_new_tokens: int, seed: int | None):
        update: dict[str, Any] = {}
        if self._temp:
            update[self._temp] = temperature
        if self._max:
            update[self._max] = max_new_tokens
        if seed is not None and "seed" in getattr(type(self.model), "model_fields", {}):
            update["seed"] = seed
        return self.model.model_copy(update=update) if update else self.model

    def generate(self, messages: Messages | str, sampling: Sampling | None = None, **overrides) -> Generation:
        from langchain_core.messages import convert_to_messages

        s = Sampling.of(sampling, **overrides)
        msgs = [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)
        lc_msgs = convert_to_messages([(m["role"], m["content"]) for m in msgs])
        model = self._configured(s.temperature, s.max_new_tokens, s.seed)
        t0 = time.perf_counter()
        out = model.invoke(lc_msgs)
        latency = time.perf_counter() - t0
        text = out.content if isinstance(out.content, str) else str(out.content)
        usage = getattr(out, "usage_metadata", None) or {}
        pt = usage.get("input_tokens") or sum(_words(m["content"]) for m in msgs)
        ct = usage.get("output_tokens") or _words(text)
        return Generation(text, int(pt), int(ct), latency)

    def stream(self, messages: Messages | str, sampling: Sampling | None = None, **overrides) -> Iterator[str]:
        yield self.generate(messages, sampling, **overrides).text


def make_generator(spec: Any):
    """A generator from a pipeline spec: ``"extractive"``, ``"local"``/``"smollm2"``, a mapping
    ``{type: local, model: PATH, ...options}``, a LangChain chat model, or any object with ``generate``."""
    if spec is None:
        spec = "local"
    if isinstance(spec, str):
        spec = {"type": spec}
    if isinstance(spec, Mapping):
        opts = dict(spec)
        kind = str(opts.pop("type", "local"))
        if kind == "extractive":
            return ExtractiveGenerator()
        if kind in ("local", "smollm2", "transformers", "hf"):
            from autorag_hp.generators import default_generator

            return default_generator(**opts)
        raise PipelineSpecError(f"unknown generator type {kind!r}; use 'extractive', 'local' (SmolLM2) or "
                                "pass a LangChain chat model / Generator object in Python")
    try:
        from langchain_core.language_models import BaseChatModel

        if isinstance(spec, BaseChatModel):
            return ChatModelGenerator(spec)
    except ImportError:  # pragma: no cover
        pass
    if callable(getattr(spec, "generate", None)):
        return spec
    raise PipelineSpecError(f"cannot use {type(spec).__name__} as a generator: it has no generate() method")
