"""Generators the pipeline can use, all meeting :class:`autorag_hp.generators.base.Generator`:

- :class:`ExtractiveGenerator`: no LLM; the answer is the best-ranked passage (fast retrieval-only mode);
- :class:`ChatModelGenerator`: any LangChain ``BaseChatModel`` (e.g. ``ChatOpenAI(base_url=...)``);
- the local instruct model from :func:`autorag_hp.generators.default_generator`: ``model:`` as given, else the
  bundled model for the corpus language (SmolLM2-135M for English, Qwen2.5-Coder-0.5B for Chinese:
  :data:`autorag_hp.generators.bundled_models.DEFAULT_BY_LANGUAGE`).

``EXTRACTIVE`` and ``LOCAL`` are the generator ``type`` names (the YAML schema checks against them).

>>> gen = ExtractiveGenerator()
>>> gen.generate("[1] (source: a)\\nLists are mutable.\\n\\nQuestion: are lists mutable?").text
'Lists are mutable.'
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from autorag_hp.evaluation.metrics import count_tokens
from autorag_hp.generators.base import Generation, Messages, Sampling
from autorag_hp.rag.errors import PipelineSpecError
from autorag_hp.rag.prompts import passages_in

#: generator ``type`` values: the extractive generator (no LLM) and the names of the local instruct model
EXTRACTIVE = ("extractive",)
LOCAL = ("local", "smollm2", "transformers", "hf")


def cut_to_tokens(text: str, limit: int) -> str:
    """The longest prefix of ``text`` with at most ``limit`` tokens by :func:`~autorag_hp.evaluation.metrics.
    count_tokens` (a word, a CJK character or a symbol each), trailing space removed.

    >>> cut_to_tokens("Lists are mutable sequences.", 3)
    'Lists are mutable'
    >>> cut_to_tokens("列表是可变的序列。", 4)
    '列表是可'
    """
    if count_tokens(text) <= limit:
        return text
    lo, hi = 0, len(text)  # count_tokens(text[:lo]) <= limit < count_tokens(text[:hi])
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if count_tokens(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid
    return text[:lo].rstrip()


class ExtractiveGenerator:
    """Returns the first context passage, cut to ``max_new_tokens`` tokens (:func:`cut_to_tokens`: words and
    each CJK character, so a Chinese passage is cut too). No model, no LLM call."""

    llm_calls = 0
    name = "extractive"
    ignores = ("prompt", "temperature")  # config keys that never change its answer (the tuner leaves them out)

    def generate(self, messages: Messages | str, sampling: Sampling | None = None, **overrides) -> Generation:
        s = Sampling.of(sampling, **overrides)
        t0 = time.perf_counter()
        passages = passages_in(messages)
        text = cut_to_tokens(passages[0][1], s.max_new_tokens) if passages else ""
        return Generation(text, 0, count_tokens(text), time.perf_counter() - t0)

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
        pt = usage.get("input_tokens") or sum(count_tokens(m["content"]) for m in msgs)
        ct = usage.get("output_tokens") or count_tokens(text)
        return Generation(text, int(pt), int(ct), latency)

    def stream(self, messages: Messages | str, sampling: Sampling | None = None, **overrides) -> Iterator[str]:
        yield self.generate(messages, sampling, **overrides).text


def make_generator(spec: Any, language: str | None = None):
    """A generator from a pipeline spec: ``"extractive"``, ``"local"``/``"smollm2"``, a mapping
    ``{type: local, model: PATH_OR_NAME, ...options}``, a LangChain chat model, or any object with ``generate``.
    A local generator whose spec names no ``model`` gets the bundled default for ``language`` (the corpus
    language, ``"en"`` / ``"zh"``; ``None`` is English)."""
    if spec is None:
        spec = "local"
    if isinstance(spec, str):
        spec = {"type": spec}
    if isinstance(spec, Mapping):
        opts = dict(spec)
        kind = str(opts.pop("type", "local"))
        if kind in EXTRACTIVE:
            return ExtractiveGenerator()
        if kind in LOCAL:
            from autorag_hp.generators import default_generator
            from autorag_hp.generators.bundled_models import default_model_name

            if opts.get("model") is None and language not in (None, "en"):
                opts["model"] = default_model_name(language)
            return default_generator(**opts)
        raise PipelineSpecError(f"unknown generator type {kind!r}; use one of {', '.join(EXTRACTIVE + LOCAL)} or "
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
