"""Which trial a LangChain run belongs to, and rewards reported from LangChain's callbacks.

Every run of a tuned chain carries its trial id in its metadata, ``metadata["autorag_hp_trial_id"]``
(:data:`TRIAL_ID_KEY`), which every callback handler and tracer sees, on the tuned run and on every run inside
it. :class:`RewardCallback` is such a handler: when a tuned run ends it scores the output with an evaluator
and reports the reward, for apps that call the chain somewhere the wrapper's ``reference=`` cannot reach::

    from autorag_hp.evaluation import evaluator
    handler = RewardCallback(tuned, evaluator("token_f1"), references={"How do I copy a list?": "list.copy()"})
    (tuned | StrOutputParser()).invoke("How do I copy a list?", config={"callbacks": [handler]})
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

__all__ = ["TRIAL_ID_KEY", "CONFIG_KEY", "TrialRun", "TrialCollector", "RewardCallback", "question_text"]

#: The run-metadata key that carries the trial id of a tuned call.
TRIAL_ID_KEY = "autorag_hp_trial_id"
#: The run-metadata key that carries the trial's configuration (its arm labels, e.g. ``{"search_kwargs": "k=5"}``).
CONFIG_KEY = "autorag_hp_config"


def question_text(input: Any) -> str | None:
    """The question of a chain input: the string itself, or a mapping's ``"question"``; None otherwise."""
    text = input if isinstance(input, str) else input.get("question") if isinstance(input, Mapping) else None
    return text if isinstance(text, str) else None


@dataclass
class TrialRun:
    """One call of a tuned chain: its trial, the configuration (arm labels), the knob values the chain got,
    and the reward the call itself reported (``reference=`` with an evaluator; ``None`` otherwise)."""

    trial_id: str
    config: Mapping[str, Any]
    values: dict[str, Any]
    reward: float | None = None


class TrialCollector:
    """What :meth:`~autorag_hp.integrations.langchain.TunedRunnable.collect_trials` yields: the calls started inside the ``with`` block."""

    def __init__(self) -> None:
        self.runs: list[TrialRun] = []
        self._lock = threading.Lock()

    def add(self, run: TrialRun) -> None:
        with self._lock:
            self.runs.append(run)

    @property
    def trial_ids(self) -> list[str]:
        """The trial ids, in the order the calls started."""
        return [r.trial_id for r in self.runs]

    @property
    def trial_id(self) -> str:
        """The one trial of the block; an error if the block ran no call or several."""
        if len(self.runs) != 1:
            raise LookupError(f"the block ran {len(self.runs)} tuned calls; read .trial_ids (or .runs) instead")
        return self.runs[0].trial_id



class RewardCallback(BaseCallbackHandler):
    """A callback handler that reports a reward for each tuned run when it ends.

    ``target``: the tuned chain (or its :class:`~autorag_hp.Tuner`: anything with ``report(trial_id, reward)``).
    ``evaluator(question, output, reference) -> float``: e.g. ``autorag_hp.evaluation.evaluator("token_f1")``.
    ``references``: ``None`` when the evaluator needs none (it gets ``reference=None``), a mapping from question
    text to reference, or a function ``input -> reference``. A run whose reference is ``None`` (a question the
    mapping lacks) is not reported: its trial waits for ``report(trial_id, reward)``.

    The output scored is the tuned chain's own (what later steps of a bigger chain make of it is not seen);
    a run that fails reports nothing. An evaluator that raises makes the call raise (``raise_error``); don't
    also pass ``reference=`` to the call, which reports the same trial itself.
    """

    raise_error = True
    run_inline = True  # score in the calling thread, also under asyncio: the report is stored when the call returns

    def __init__(self, target: Any, evaluator: Callable[[Any, Any, Any], float],
                 references: Mapping[str, Any] | Callable[[Any], Any] | None = None):
        if not callable(getattr(target, "report", None)):
            raise TypeError("target must be the tuned chain or its Tuner (something with report(trial_id, reward))")
        if not callable(evaluator):
            raise TypeError("evaluator must be a function (question, output, reference) -> float")
        if references is not None and not (isinstance(references, Mapping) or callable(references)):
            raise TypeError("references must be None, a mapping question -> reference, or a function input -> reference")
        self.target, self.evaluator, self.references = target, evaluator, references
        self._runs: dict[UUID, tuple[str, Any]] = {}  # the tuned run's id -> (trial id, its input)
        self._open: set[str] = set()  # trials whose tuned run has started and not ended
        self._lock = threading.Lock()

    def _reference(self, input: Any) -> Any:
        if isinstance(self.references, Mapping):
            text = question_text(input)
            return None if text is None else self.references.get(text)
        return self.references(input) if callable(self.references) else None

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, metadata: dict | None = None,
                       **kwargs: Any) -> None:
        trial_id = (metadata or {}).get(TRIAL_ID_KEY)
        if not isinstance(trial_id, str):
            return
        with self._lock:
            if trial_id not in self._open:  # the first run carrying it is the tuned run; the rest run inside it
                self._open.add(trial_id)
                self._runs[run_id] = (trial_id, inputs)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            entry = self._runs.pop(run_id, None)
            if entry is not None:
                self._open.discard(entry[0])
        if entry is None:
            return
        trial_id, input = entry
        input = kwargs.get("inputs", input)  # a streamed run names its input only when it ends
        if self.references is None:
            reference = None
        else:
            reference = self._reference(input)
            if reference is None:
                return
        self.target.report(trial_id, float(self.evaluator(input, outputs, reference)))

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            entry = self._runs.pop(run_id, None)
            if entry is not None:
                self._open.discard(entry[0])
