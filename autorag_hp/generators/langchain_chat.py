"""A LangChain chat model over any :class:`~autorag_hp.generators.base.Generator` (by default the local one).

Example::

    from autorag_hp.generators import ChatLocalGenerator, default_generator
    chat = ChatLocalGenerator(generator=default_generator(threads=2), max_new_tokens=32)
    msg = chat.invoke("What is the capital of France?")
    print(msg.content, msg.usage_metadata)   # {'input_tokens': 37, 'output_tokens': 8, 'total_tokens': 45}
    for chunk in chat.stream("Say hi"):
        print(chunk.content, end="")

Requires ``langchain-core`` (extra ``rag``). Sampling parameters are fields, so
``chat.with_config(...)`` / ``configurable_fields`` can expose them as tuning knobs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

try:
    from langchain_core.callbacks import CallbackManagerForLLMRun
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
    from pydantic import ConfigDict, Field
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "ChatLocalGenerator needs langchain-core: pip install 'autorag-hp[rag]'"
    ) from exc

from .base import Sampling

_ROLES = {"human": "user", "user": "user", "ai": "assistant", "assistant": "assistant", "system": "system"}


def to_chat_messages(messages: list[BaseMessage]) -> list[dict]:
    """LangChain messages -> ``[{"role", "content"}]`` (human->user, ai->assistant, system->system)."""
    out = []
    for m in messages:
        role = _ROLES.get(m.type)
        if role is None:
            raise ValueError(f"unsupported message type {m.type!r}; use system, human or ai messages")
        content = m.content if isinstance(m.content, str) else m.text
        out.append({"role": role, "content": content})
    return out


def _usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "input_tokens": prompt_tokens,
        "output_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class ChatLocalGenerator(BaseChatModel):
    """LangChain ``BaseChatModel`` that runs a local generator; reports token usage in ``usage_metadata``.

    ``generator``: any object with the Generator protocol; ``None`` -> the process-wide
    :func:`~autorag_hp.generators.local.default_generator` (SmolLM2), loaded on first use.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    generator: Any = Field(default=None, exclude=True)
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    seed: int | None = None

    @property
    def _llm_type(self) -> str:
        return "autorag-hp-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        gen = self.generator
        return {
            "model": getattr(gen, "source", type(gen).__name__ if gen is not None else "default"),
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
        }

    def _gen(self):
        if self.generator is None:
            from .local import default_generator

            self.generator = default_generator()
        return self.generator

    def _sampling(self, stop: list[str] | None, kwargs: dict) -> Sampling:
        """The fields, overridden by a call's keywords, validated; ``stop`` from LangChain."""
        return Sampling(
            temperature=kwargs.pop("temperature", self.temperature),
            top_p=kwargs.pop("top_p", self.top_p),
            max_new_tokens=kwargs.pop("max_new_tokens", self.max_new_tokens),
            seed=kwargs.pop("seed", self.seed),
            stop=stop or None,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        params = self._sampling(stop, kwargs).keywords()  # keywords: any Generator takes them
        out = self._gen().generate(to_chat_messages(messages), **params)
        message = AIMessage(
            content=out.text,
            usage_metadata=_usage(out.prompt_tokens, out.completion_tokens),
            response_metadata={"latency_s": out.latency_s, "model_name": self._identifying_params["model"]},
        )
        return ChatResult(
            generations=[ChatGeneration(message=message)],
            llm_output={"token_usage": _usage(out.prompt_tokens, out.completion_tokens)},
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        params = self._sampling(stop, kwargs).keywords()
        gen = self._gen()
        chat = to_chat_messages(messages)
        usage: dict = {}
        if getattr(gen, "streams_usage", False):
            pieces = gen.stream(chat, usage=usage, **params)
        else:  # any other Generator: stream text, no usage counts available
            pieces = gen.stream(chat, **params)
        for piece in pieces:
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        if usage:
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    usage_metadata=_usage(usage["prompt_tokens"], usage["completion_tokens"]),
                    response_metadata={"latency_s": usage["latency_s"]},
                    chunk_position="last",
                )
            )
