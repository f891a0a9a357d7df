"""Tune an existing LangChain chain: its knobs become bandit arms, every call runs one trial.

The tuned chain is a LangChain ``Runnable`` with the chain's own inputs and outputs: it composes with ``|``,
and ``invoke`` / ``ainvoke`` / ``batch`` / ``abatch`` / ``stream`` / ``astream`` return (or stream) exactly
what the chain does. Each call asks the :class:`~autorag_hp.Tuner` for a configuration first::

    from autorag_hp.evaluation import evaluator
    from autorag_hp.integrations.langchain import tune_chain
    tuned = tune_chain(chain, {"search_kwargs": [{"k": 1}, {"k": 3}], "prompt": ["concise", "cite"]},
                       evaluator=evaluator("token_f1"))
    answer = (tuned | StrOutputParser()).invoke("How do I copy a list?", reference="list.copy()")  # reported
    answer = tuned.invoke("Are tuples immutable?")            # no reference: report later,
    tuned.report(tuned.last_trial_id, 1.0)                    # e.g. when the user clicks thumbs-up
    print(tuned.best(3))

Which trial answered. Every run of the tuned chain, and every run inside it, carries the trial id in its
metadata, ``metadata["autorag_hp_trial_id"]`` (and the configuration's readable labels under
``"autorag_hp_config"``), so every callback handler and tracer (LangSmith, Langfuse...) can join a trace to its
trial. In code: ``tuned.last_trial_id`` is the trial of the last call made in this thread; around concurrent
calls (``batch``, ``asyncio.gather``) use ``with tuned.collect_trials() as trials: ...`` (like LangChain's
``collect_runs``), then ``trials.trial_ids``.

Rewards. ``reference=`` on ``invoke`` / ``stream`` (``references=[...]``, one per input, on ``batch``) with an
``evaluator(question, output, reference) -> float`` reports as soon as the call ends;
:class:`RewardCallback` does the same from a callback handler, for
chains you call elsewhere; ``tuned.report(trial_id, reward)`` takes feedback that comes later.

Knobs are discovered from ``chain.config_specs`` (``configurable_fields`` / ``configurable_alternatives``);
each call passes its values in its own ``configurable``: nothing shared is mutated, so concurrent calls never
see each other's settings. Values that are not scalars (``{"k": 5}``) become readable arm labels (``"k=5"``).
Any factory ``build(config) -> Runnable or callable`` works too: ``tune_factory(build, {"k": [1, 3]})``.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.runnables.config import (
    ensure_config,
    get_config_list,
    get_executor_for_config,
    patch_config,
)
from langchain_core.runnables.utils import gather_with_concurrency

from autorag_hp.errors import AutoRAGHPError, InvalidConfigError
from autorag_hp.integrations.knobs import Knob, arm_labels, discover_knobs
from autorag_hp.integrations.langchain_feedback import (
    CONFIG_KEY,
    TRIAL_ID_KEY,
    RewardCallback,
    TrialCollector,
    TrialRun,
    question_text,
)
from autorag_hp.integrations.langchain_retriever import RAGRetriever

__all__ = ["TRIAL_ID_KEY", "TrialRun", "TrialCollector", "RewardCallback", "TunedRunnable", "tune_chain",
           "tune_factory", "discover_knobs", "Knob", "RAGRetriever", "arm_labels"]

_COLLECTORS: contextvars.ContextVar[tuple] = contextvars.ContextVar("autorag_hp_trial_collectors", default=())


class _Accumulator:
    """The final output of a stream: chunks added with ``+`` (as LangChain merges them), else the last."""

    def __init__(self) -> None:
        self.value: Any = None
        self.empty = True

    def add(self, chunk: Any) -> None:
        if self.empty:
            self.value, self.empty = chunk, False
            return
        try:
            self.value = self.value + chunk
        except TypeError:
            self.value = chunk


async def _aiter_one(value: Any) -> AsyncIterator[Any]:
    yield value


class TunedRunnable(Runnable):
    """A Runnable that runs the wrapped chain under a configuration from a :class:`~autorag_hp.Tuner` on every
    call, and returns the chain's own output. Build it with :func:`tune_chain` or :func:`tune_factory`.

    ``evaluator(input, output, reference) -> float`` (optional; e.g.
    ``autorag_hp.evaluation.evaluator("token_f1")``) reports automatically when a call passes ``reference=``.
    """

    def __init__(self, bind: Callable[[dict[str, Any], RunnableConfig], tuple[Runnable, RunnableConfig]],
                 values: Mapping[str, Sequence[Any]], *, tuner=None, policy: str = "hier_ucb",
                 storage: Any = None, seed: int = 0, batch_size: int = 1, study: str = "default",
                 evaluator: Callable[[Any, Any, Any], float] | None = None, group: Mapping[str, str] | None = None,
                 inner: Runnable | None = None):
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
            self._values[name] = arms = arm_labels(vals)
            g = (group or {}).get(name)
            (spec.setdefault(g, {}) if g else spec)[name] = list(arms)
        self.space = SearchSpace(spec)
        if tuner is not None and tuner.space != self.space:
            raise InvalidConfigError("the tuner given was built on a different search space than these knob values")
        self.tuner = tuner or Tuner(self.space, policy=policy, storage=storage, seed=seed, batch_size=batch_size,
                                    study=study)
        self._bind = bind
        self._inner = inner
        self._local = threading.local()
        self.evaluator = evaluator

    def __repr__(self) -> str:
        return f"TunedRunnable({self.get_name() if self._inner is None else self._inner.get_name()}, {self.tuner!r})"

    # ------------------------------------------------------------------------------------------ schemas
    @property
    def InputType(self) -> Any:  # noqa: N802 - LangChain's name
        return self._inner.InputType if self._inner is not None else Any

    @property
    def OutputType(self) -> Any:  # noqa: N802 - LangChain's name
        return self._inner.OutputType if self._inner is not None else Any

    def get_input_schema(self, config: RunnableConfig | None = None):
        return self._inner.get_input_schema(config) if self._inner is not None else super().get_input_schema(config)

    def get_output_schema(self, config: RunnableConfig | None = None):
        return self._inner.get_output_schema(config) if self._inner is not None else super().get_output_schema(config)

    # ------------------------------------------------------------------------------------------- tuning
    def values_of(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Knob values (the objects the chain gets) for a configuration of arm labels."""
        return {k: self._values[k][v] for k, v in config.items()}

    @staticmethod
    def question_of(input: Any) -> str | None:
        """The question text of an input (a string, or a mapping's ``"question"``), for the ranking's one
        sample per distinct question; None when the input has no such text."""
        text = question_text(input)
        return text if text is not None and text.strip() else None

    @property
    def last_trial_id(self) -> str | None:
        """The trial of the last call this thread started (None before the first). ``batch`` runs its calls in
        worker threads and ``asyncio`` tasks share one: use :meth:`collect_trials` around those."""
        run = getattr(self._local, "run", None)
        return None if run is None else run.trial_id

    @contextlib.contextmanager
    def collect_trials(self) -> Iterator[TrialCollector]:
        """``with tuned.collect_trials() as trials:`` records every call of this tuned chain started inside the
        block, in this thread, its worker threads and its tasks; then ``trials.trial_ids`` / ``trials.runs``."""
        collector = TrialCollector()
        token = _COLLECTORS.set((*_COLLECTORS.get(), (self, collector)))
        try:
            yield collector
        finally:
            _COLLECTORS.reset(token)

    def _start(self, input: Any, config: RunnableConfig | None, reference: Any):
        text = question_text(input)
        if text is not None and not text.strip():
            raise ValueError("the input question is empty; nothing was run and the tuner is unchanged")
        if reference is not None and self.evaluator is None:
            raise InvalidConfigError("reference= was given but there is no evaluator to score it: pass "
                                     "evaluator=autorag_hp.evaluation.evaluator('token_f1') (or your own) to tune_chain")
        trial = self.tuner.suggest(question=self.question_of(input))
        run = TrialRun(trial.id, trial.config, self.values_of(trial.config))
        self._local.run = run
        for owner, collector in _COLLECTORS.get():
            if owner is self:
                collector.add(run)
        config = ensure_config(config)
        config["metadata"] = {**config["metadata"], TRIAL_ID_KEY: trial.id, CONFIG_KEY: dict(trial.config)}
        return run, config

    def _finish(self, run: TrialRun, input: Any, output: Any, reference: Any) -> None:
        if reference is not None:
            reward = float(self.evaluator(input, output, reference))
            self.tuner.report(run.trial_id, reward)
            run.reward = reward

    def invoke(self, input: Any, config: RunnableConfig | None = None, *, reference: Any = None, **kwargs) -> Any:
        """Run the chain under the next suggested configuration and return its output.

        An empty question raises before a trial is suggested. If the chain itself raises, its trial stays
        pending (unreported): it never counts as a reward, and a ``trial_timeout`` expires it.
        """
        run, config = self._start(input, config, reference)

        def call(inp: Any, config: RunnableConfig) -> Any:
            target, child = self._bind(run.values, config)
            return target.invoke(inp, child, **kwargs)

        output = self._call_with_config(call, input, config)
        self._finish(run, input, output, reference)
        return output

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, *, reference: Any = None,
                      **kwargs) -> Any:
        run, config = self._start(input, config, reference)

        async def call(inp: Any, config: RunnableConfig) -> Any:
            target, child = self._bind(run.values, config)
            return await target.ainvoke(inp, child, **kwargs)

        output = await self._acall_with_config(call, input, config)
        self._finish(run, input, output, reference)
        return output

    def stream(self, input: Any, config: RunnableConfig | None = None, *, reference: Any = None,
               **kwargs) -> Iterator[Any]:
        """Stream the chain's own chunks; with ``reference=`` the merged output is scored when the stream ends
        (a stream abandoned early reports nothing)."""
        run, config = self._start(input, config, reference)
        final = _Accumulator()

        def transform(inputs: Iterator[Any], config: RunnableConfig) -> Iterator[Any]:
            target, child = self._bind(run.values, config)
            for chunk in target.stream(next(inputs), child, **kwargs):
                final.add(chunk)
                yield chunk

        yield from self._transform_stream_with_config(iter([input]), transform, config)
        self._finish(run, input, final.value, reference)

    async def astream(self, input: Any, config: RunnableConfig | None = None, *, reference: Any = None,
                      **kwargs) -> AsyncIterator[Any]:
        run, config = self._start(input, config, reference)
        final = _Accumulator()

        async def transform(inputs: AsyncIterator[Any], config: RunnableConfig) -> AsyncIterator[Any]:
            target, child = self._bind(run.values, config)
            async for chunk in target.astream(await anext(inputs), child, **kwargs):
                final.add(chunk)
                yield chunk

        async for chunk in self._atransform_stream_with_config(_aiter_one(input), transform, config):
            yield chunk
        self._finish(run, input, final.value, reference)

    @staticmethod
    def _references(inputs: Sequence[Any], references: Sequence[Any] | None, kwargs: dict) -> list[Any]:
        if "reference" in kwargs:
            raise TypeError("batch takes references=[...] with one reference per input (reference= is for invoke)")
        if references is None:
            return [None] * len(inputs)
        if isinstance(references, str) or len(references) != len(inputs):
            raise ValueError(f"references must be a list with one reference per input: {len(inputs)} inputs, "
                             f"got {'a string' if isinstance(references, str) else len(references)}")
        return list(references)

    def batch(self, inputs: list[Any], config: RunnableConfig | list[RunnableConfig] | None = None, *,
              return_exceptions: bool = False, references: Sequence[Any] | None = None, **kwargs) -> list[Any]:
        """``invoke`` on every input in parallel (``config["max_concurrency"]`` threads), each its own trial;
        ``references`` (optional) gives one reference per input."""
        refs = self._references(inputs, references, kwargs)
        if not inputs:
            return []
        configs = get_config_list(config, len(inputs))

        def one(i: int) -> Any:
            try:
                return self.invoke(inputs[i], configs[i], reference=refs[i], **kwargs)
            except Exception as exc:
                if return_exceptions:
                    return exc
                raise

        if len(inputs) == 1:
            return [one(0)]
        with get_executor_for_config(configs[0]) as executor:
            return list(executor.map(one, range(len(inputs))))

    async def abatch(self, inputs: list[Any], config: RunnableConfig | list[RunnableConfig] | None = None, *,
                     return_exceptions: bool = False, references: Sequence[Any] | None = None, **kwargs) -> list[Any]:
        refs = self._references(inputs, references, kwargs)
        if not inputs:
            return []
        configs = get_config_list(config, len(inputs))

        async def one(i: int) -> Any:
            try:
                return await self.ainvoke(inputs[i], configs[i], reference=refs[i], **kwargs)
            except Exception as exc:
                if return_exceptions:
                    return exc
                raise

        return list(await gather_with_concurrency(configs[0].get("max_concurrency"), *map(one, range(len(inputs)))))

    # ------------------------------------------------------------------------------------------ results
    def report(self, trial_id: str, reward: float) -> None:
        """Feed back the reward of one call (a finite number; higher is better), however late: the trial id
        is ``last_trial_id``, a collector's, or ``metadata["autorag_hp_trial_id"]`` of its run."""
        self.tuner.report(trial_id, reward)

    def best(self, k: int | None = 5, *, rule: str = "policy") -> list:
        """What to deploy, best first (:meth:`Tuner.best`: ``Estimate`` rows with ``.config`` (arm labels such as
        ``k=5``), ``.mean``, ``.count``, ``.lower``, ``.upper``, ``.note``)."""
        return self.tuner.best(k, rule=rule)

    def best_values(self) -> dict[str, Any] | None:
        """The knob values of the best configuration so far, ready for ``chain.with_config(configurable=...)``."""
        rows = self.tuner.best(1)
        return self.values_of(rows[0].config) if rows else None


def tune_chain(chain: Runnable, values: Mapping[str, Sequence[Any]] | None = None, **tuner_kwargs) -> TunedRunnable:
    """Wrap a LangChain Runnable whose knobs come from ``configurable_fields`` / ``configurable_alternatives``.

    ``values``: knob id -> list of values. Unknown ids raise an error listing the chain's knobs; an
    alternatives knob left out of ``values`` is not tuned (pass ``values={"llm": None}`` to tune all its keys).
    ``tuner_kwargs`` go to :class:`TunedRunnable` (``policy``, ``storage``, ``seed``, ``evaluator``...).
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

    def bind(knob_values: dict[str, Any], config: RunnableConfig) -> tuple[Runnable, RunnableConfig]:
        return chain, patch_config(config, configurable=dict(knob_values))  # this call's own configurable

    wrapped = TunedRunnable(bind, values, inner=chain, **tuner_kwargs)
    wrapped.chain = chain
    wrapped.knobs = knobs
    return wrapped


def tune_factory(build: Callable[[dict], Any], values: Mapping[str, Sequence[Any]], **tuner_kwargs) -> TunedRunnable:
    """Wrap ``build(config) -> Runnable or callable``: each call builds its own instance from its configuration
    (a plain callable runs as a ``RunnableLambda``)."""
    if not callable(build):
        raise TypeError("build must be a callable taking a configuration dict")

    def bind(knob_values: dict[str, Any], config: RunnableConfig) -> tuple[Runnable, RunnableConfig]:
        target = build(dict(knob_values))
        if isinstance(target, Runnable):
            return target, config
        if callable(target):
            return RunnableLambda(target), config
        raise AutoRAGHPError(f"build(config) returned {type(target).__name__}; return a Runnable or a callable")

    wrapped = TunedRunnable(bind, values, **tuner_kwargs)
    wrapped.build = build
    return wrapped


