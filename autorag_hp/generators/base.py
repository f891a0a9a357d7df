"""The contract every text generator meets; the RAG pipeline codes against this, not a concrete model."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

Messages = Sequence[dict]  # [{"role": "system"|"user"|"assistant", "content": str}, ...]


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float


@runtime_checkable
class Generator(Protocol):
    def generate(
        self,
        messages: Messages | str,
        *,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 64,
        seed: int | None = None,
    ) -> Generation: ...

    def stream(self, messages: Messages | str, **kwargs) -> Iterator[str]: ...
