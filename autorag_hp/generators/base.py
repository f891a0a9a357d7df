"""The contract every text generator meets; the RAG pipeline codes against this, not a concrete model.

>>> Sampling(max_new_tokens=16).greedy
True
>>> Sampling.of(Sampling(temperature=0.7), max_new_tokens=8)
Sampling(temperature=0.7, top_p=1.0, max_new_tokens=8, seed=None, stop=None)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, Self, runtime_checkable

Messages = Sequence[dict]  # [{"role": "system"|"user"|"assistant", "content": str}, ...]


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float


class Overridable:
    """A frozen options dataclass whose fields a call may also pass as keywords: :meth:`of` is the one rule."""

    @classmethod
    def of(cls, options: Self | None = None, **overrides) -> Self:
        """``options`` (default: the defaults) with ``overrides``, its fields as keywords, applied."""
        base = cls() if options is None else options
        return replace(base, **overrides) if overrides else base


@dataclass(frozen=True)
class Sampling(Overridable):
    """How to decode: ``temperature=0`` is greedy; with sampling, ``seed`` makes the draw reproducible; the answer
    is cut before the first of the ``stop`` strings. Out-of-range values raise a ValueError that says what to fix.

    Every generator method takes one as ``sampling`` and its fields as keywords (``max_new_tokens=16``), which
    override it (:meth:`Overridable.of`)."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    seed: int | None = None
    stop: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        t, p, n = self.temperature, self.top_p, self.max_new_tokens
        if t is None or not isinstance(t, int | float) or t < 0:
            raise ValueError(f"temperature must be a number >= 0 (0 means greedy decoding), got {t!r}")
        if p is None or not isinstance(p, int | float) or not (0 < p <= 1):
            raise ValueError(f"top_p must be in (0, 1] (1 keeps the whole distribution), got {p!r}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"max_new_tokens must be an integer >= 1, got {n!r}")
        if self.stop is not None and not isinstance(self.stop, tuple):
            object.__setattr__(self, "stop", tuple(self.stop))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def keywords(self) -> dict:
        """The fields as keywords (``stop`` only when set), for a generator that takes keywords only."""
        kw: dict = {"temperature": self.temperature, "top_p": self.top_p, "max_new_tokens": self.max_new_tokens,
                    "seed": self.seed}
        if self.stop:
            kw["stop"] = list(self.stop)
        return kw


@runtime_checkable
class Generator(Protocol):
    """``sampling``: a :class:`Sampling`; ``overrides``: its fields as keywords, applied on top of it.

    Optional: ``llm_calls`` (model calls per ``generate``, for cost accounting) and ``streams_usage = True`` when
    ``stream(..., usage={})`` fills the dict with ``prompt_tokens``, ``completion_tokens`` and ``latency_s``."""

    def generate(self, messages: Messages | str, sampling: Sampling | None = None, **overrides) -> Generation: ...

    def stream(self, messages: Messages | str, sampling: Sampling | None = None, **overrides) -> Iterator[str]: ...
