"""Tune an existing LangChain chain: its knobs become bandit arms, every call runs one trial.

(a) A chain whose parts use ``configurable_fields`` / ``configurable_alternatives``: the knobs are discovered
from ``chain.config_specs``; give a list of values per knob you want tuned (alternatives default to all keys)::

    from autorag_hp.integrations.langchain import tune_chain
    tuned = tune_chain(chain, {"top_k": [1, 3, 5], "prompt": ["concise", "cite"]}, policy="hier_ucb")
    out = tuned.invoke("How do I copy a list?")          # a Tuned(output, trial_id, config)
    tuned.report(out.trial_id, reward=1.0)               # or pass evaluator=... and reference=...
    print(tuned.best(3))

Every call gets its own configured instance (``chain.with_config(configurable=...)``): nothing shared is
mutated, so concurrent calls with different configurations never see each other's settings.

(b) Any factory ``build(config) -> Runnable or callable``: ``tune_factory(build, {"k": [1, 3]})``.

The wrapper is itself a Runnable (``invoke`` / ``batch`` / ``ainvoke`` / ``abatch``).
"""

from __future__ import annotations

import enum
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableConfig

from autorag_hp.errors import AutoRAGHPError, InvalidConfigError

__all__ = ["Tuned", "TunedRunnable", "tune_chain", "tune_factory", "discover_knobs", "Knob", "RAGRetriever"]

_SCALAR = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Knob:
    """One configurable of a chain: ``choices`` lists an alternatives knob's keys (``None`` for a field)."""

    id: str
    default: Any
    annotation: Any = None
    choices: tuple | None = None
    description: str | None = None


@dataclass(frozen=True)
class Tuned:
    """What a wrapped call returns: the chain's output, the trial to report on, the configuration used."""

    output: Any
    trial_id: str
    config: Mapping[str, Any]
    reward: float | None = None
    meta: dict = field(default_factory=dict, compare=False)


def discover_knobs(chain: Runnable) -> dict[str, Knob]:
    """The knobs a chain advertises through ``config_specs`` (fields and alternatives), by id."""
    knobs: dict[str, Knob] = {}
    for spec in getattr(chain, "config_specs", []) or []:
        ann = spec.annotation
        choices = tuple(m.value for m in ann) if isinstance(ann, type) and issubclass(ann, enum.Enum) else None
        knobs[spec.id] = Knob(spec.id, spec.default, ann, choices, spec.description)
    return knobs


def _arm(value: Any, i: int) -> Any:
    """Arm value for a knob value: scalars as they are; anything else (dicts, objects) as a stable label."""
    if isinstance(value, _SCALAR) and not (isinstance(value, float) and not math.isfinite(value)):
        return value
    return f"#{i}:{value!r}"[:80]


class TunedRunnable(Runnable):
    """A Runnable that takes a configuration from a :class:`~autorag_hp.Tuner` on every call.

    Build it with :func:`tune_chain` or :func:`tune_factory`. ``evaluator(input, output, reference) -> float``
    (optional) reports automatically when a call passes ``reference=...``.
    """

    def __init__(self, run_with: Callable[[Mapping[str, Any], Any, RunnableConfig | None], Any],
                 values: Mapping[str, Sequence[Any]], *, tuner=None, policy: str = "hier_ucb",
                 storage: Any = None, seed: int = 0, batch_size: int = 1, study: str = "default",
                 evaluator: Callable[[Any, Any, Any], float] | None = None, group: Mapping[str, str] | None = None):
        from autorag_hp.space import SearchSpace
        from autorag_hp.tuner import Tuner

        if not values:
            raise InvalidConfigError("give at least one knob with a list of values to tune")
        self._values: dict[str, dict[Any, Any]] = {}
        spec: dict[str, Any] = {}
        for name, vals in values.items():
            vals = list(vals)
            if not vals:
                raise InvalidConfigError(f"knob {name!r} has no values; give at least one")
            arms = {_arm(v, i): v for i, v in enumerate(vals)}
            self._values[name] = arms
            g = (group or {}).get(name)
            if g:
                spec.setdefault(g, {})[name] = list(arms)
            else:
                spec[name] = list(arms)
        self.space = SearchSpace(spec)
        if tuner is not None and tuner.space != self.space:
            raise InvalidConfigError("the tuner given was built on a different search space than these knob values")
        self.tuner = tuner or Tuner(self.space, policy=policy, storage=storage, seed=seed, batch_size=batch_size,
                                    study=study)
        self._run_with = run_with
        self.evaluator = evaluator

    # ------------------------------------------------------------------------------------------- tuning
    def values_of(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Knob values (the objects the chain gets) for a configuration of arm values."""
        return {k: self._values[k][v] for k, v in config.items()}

    def _finish(self, trial, input: Any, output: Any, reference: Any) -> Tuned:
        reward = None
        if self.evaluator is not None and reference is not None:
            reward = float(self.evaluator(input, output, reference))
            self.tuner.report(trial.id, reward)
        return Tuned(output, trial.id, trial.config, reward, {"decision": trial.decision})

    @staticmethod
    def question_of(input: Any) -> str | None:
        """The question text of an input (a string, or a mapping's ``"question"``), for the ranking's one
        sample per distinct question; None when the input has no such text."""
        text = input if isinstance(input, str) else input.get("question") if isinstance(input, Mapping) else None
        return text if isinstance(text, str) and text.strip() else None

    @staticmethod
    def check_input(input: Any) -> None:
        """Reject an empty question before anything is stored (no trial is suggested for it)."""
        text = input if isinstance(input, str) else input.get("question") if isinstance(input, Mapping) else None
        if isinstance(text, str) and not text.strip():
            raise ValueError("the input question is empty; nothing was run and the tuner is unchanged")

    def invoke(self, input: Any, config: RunnableConfig | None = None, *, reference: Any = None, **kwargs) -> Tuned:
        """Run the chain under the next suggested configuration; returns :class:`Tuned`.

        An empty question raises before a trial is suggested. If the chain itself raises, its trial stays
        pending (unreported): it never counts as a reward, and a ``trial_timeout`` expires it.
        """
        self.check_input(input)
        trial = self.tuner.suggest(question=self.question_of(input))
        output = self._run_with(self.values_of(trial.config), input, config, **kwargs)
        return self._finish(trial, input, output, reference)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, *, reference: Any = None,
                      **kwargs) -> Tuned:
        self.check_input(input)
        trial = self.tuner.suggest(question=self.question_of(input))
        output = self._run_with(self.values_of(trial.config), input, config, _async=True, **kwargs)
        if inspect.isawaitable(output):
            output = await output
        return self._finish(trial, input, output, reference)

    def report(self, trial_id: str, reward: float) -> None:
        """Feed back the reward of one call (a finite number; higher is better)."""
        self.tuner.report(trial_id, reward)

    def best(self, k: int | None = 5, *, rule: str = "policy") -> list:
        """What to deploy, best first (:meth:`Tuner.best`: ``Estimate`` rows with ``.config``, ``.mean``,
        ``.count``, ``.lower``, ``.upper``, ``.note``)."""
        return self.tuner.best(k, rule=rule)

    def best_values(self) -> dict[str, Any] | None:
        """The knob values of the best configuration so far, ready for ``chain.with_config(configurable=...)``."""
        rows = self.tuner.best(1)
        return self.values_of(rows[0].config) if rows else None


def tune_chain(chain: Runnable, values: Mapping[str, Sequence[Any]] | None = None, **tuner_kwargs) -> TunedRunnable:
    """Wrap a LangChain Runnable whose knobs come from ``configurable_fields`` / ``configurable_alternatives``.

    ``values``: knob id -> list of values. Unknown ids raise an error listing the chain's knobs; an
    alternatives knob left out of ``values`` is not tuned (pass ``values={"llm": None}`` to tune all its keys).
    """
    knobs = discover_knobs(chain)
    if not knobs:
        raise InvalidConfigError(
            "the chain has no configurable knobs; expose some with .configurable_fields(...) or "
            ".configurable_alternatives(...), or use tune_factory(build, values)"
        )
    values = dict(values or {k: None for k, kn in knobs.items() if kn.choices})
    unknown = sorted(set(values) - set(knobs))
    if unknown:
        raise InvalidConfigError(f"unknown knob(s) {unknown}; the chain exposes {sorted(knobs)}")
    for k, v in list(values.items()):
        if v is None:
            if knobs[k].choices is None:
                raise InvalidConfigError(f"knob {k!r} is a field: give its list of values")
            values[k] = list(knobs[k].choices)
        elif knobs[k].choices is not None:
            bad = [x for x in v if x not in knobs[k].choices]
            if bad:
                raise InvalidConfigError(f"knob {k!r}: {bad} are not among its alternatives {list(knobs[k].choices)}")

    def run_with(knob_values, input, config, _async=False, **kwargs):
        configured = chain.with_config(configurable=dict(knob_values))  # a new binding per call
        if _async:
            return configured.ainvoke(input, config, **kwargs)
        return configured.invoke(input, config, **kwargs)

    wrapped = TunedRunnable(run_with, values, **tuner_kwargs)
    wrapped.chain = chain
    wrapped.knobs = knobs
    return wrapped


def tune_factory(build: Callable[[dict], Any], values: Mapping[str, Sequence[Any]], **tuner_kwargs) -> TunedRunnable:
    """Wrap ``build(config) -> Runnable or callable``: each call builds its own instance from its configuration."""
    if not callable(build):
        raise TypeError("build must be a callable taking a configuration dict")

    def run_with(knob_values, input, config, _async=False, **kwargs):
        target = build(dict(knob_values))
        if isinstance(target, Runnable):
            return target.ainvoke(input, config, **kwargs) if _async else target.invoke(input, config, **kwargs)
        if callable(target):
            return target(input, **kwargs)
        raise AutoRAGHPError(f"build(config) returned {type(target).__name__}; return a Runnable or a callable")

    wrapped = TunedRunnable(run_with, values, **tuner_kwargs)
    wrapped.build = build
    return wrapped


class RAGRetriever(BaseRetriever):
    """A LangChain retriever over :class:`autorag_hp.rag.RAGPipeline`'s index cache.

    Its fields are knobs: ``RAGRetriever(pipeline=pipe).configurable_fields(top_k=ConfigurableField(id="top_k"))``.
    """

    pipeline: Any
    top_k: int = 3
    chunk_size: int = 512
    embedding: str = "bm25"

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        cfg = {"top_k": self.top_k, "chunk_size": self.chunk_size, "embedding": self.embedding}
        return [LCDocument(page_content=c.text, metadata={"source": c.source, "score": c.score})
                for c in self.pipeline.retrieve(query, cfg)]
