"""Plain value types that cross module boundaries (question -> pipeline -> Answer -> metrics).

They are light (no heavy imports) so every layer can use them without pulling in RAG or model code.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Context:
    """One retrieved passage: ``source`` is the id of the document it came from (e.g. ``faq/general.rst#3``)."""

    source: str
    text: str
    score: float | None = None


@dataclass(frozen=True)
class Answer:
    """What a pipeline run returns for one question."""

    text: str
    contexts: tuple[Context, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    llm_calls: int = 1
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def sources(self) -> list[str]:
        """Source ids of the contexts, in rank order, without duplicates."""
        seen: dict[str, None] = {}
        for c in self.contexts:
            seen.setdefault(c.source, None)
        return list(seen)


@dataclass(frozen=True)
class QAItem:
    """A question, with an optional reference answer and optional gold source ids."""

    question: str
    answer: str | None = None
    sources: tuple[str, ...] = ()
    id: str | None = None
