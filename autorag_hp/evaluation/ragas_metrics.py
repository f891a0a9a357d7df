"""Adapters from ragas 0.4 metrics to autorag-hp's ``fn(answer, item) -> float | None`` metric shape.

ragas is imported only when one of these metrics is first built (``pip install 'autorag-hp[eval]'``).

How an :class:`~autorag_hp.types.Answer` / :class:`~autorag_hp.types.QAItem` pair becomes a ragas
``SingleTurnSample``: ``user_input = item.question``, ``response = answer.text``, ``reference = item.answer``,
``retrieved_contexts = [c.text for c in answer.contexts]`` and ``reference_contexts = [item.answer]`` (the
reference answer stands in for the gold passage, which a QAItem does not carry).

Metrics that need no LLM (available by name through :func:`autorag_hp.evaluation.metrics.get_metric`):

=================================  ==========================================================================
``ragas_rouge_l``                  ``RougeScore(rouge_type="rougeL", mode="fmeasure")`` (Porter stemming)
``ragas_bleu``                     ``BleuScore`` (sacrebleu corpus BLEU of the one answer, 0..1)
``ragas_exact_match``              ``ExactMatch`` (raw string equality)
``ragas_string_presence``          ``StringPresence`` (reference is a substring of the answer)
``ragas_string_similarity``        ``NonLLMStringSimilarity`` (1 - normalised Levenshtein distance)
``ragas_context_recall``           ``NonLLMContextRecall`` (reference contexts matched by a retrieved one)
``ragas_context_precision``        ``NonLLMContextPrecisionWithReference`` (average precision of the ranking)
=================================  ==========================================================================

LLM-judged metrics need a judge: a LangChain chat model (anything ``BaseLanguageModel``) given to
:func:`ragas_llm_metrics`, which returns ``ragas_faithfulness`` (``Faithfulness``), ``ragas_answer_relevancy``
(``ResponseRelevancy``, also needs LangChain ``Embeddings``) and ``ragas_llm_context_precision``
(``LLMContextPrecisionWithReference``)::

    judge = ChatOpenAI(model="gpt-4o-mini")            # or the local SmolLM2 LangChain wrapper
    metrics = ragas_llm_metrics(judge, embeddings=HuggingFaceEmbeddings(model_name=...))
    metrics["ragas_faithfulness"](answer, item)        # -> float in [0, 1], or None when it cannot be judged
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from typing import Any

from autorag_hp.evaluation.metrics import Metric, UnknownMetricError
from autorag_hp.types import Answer, QAItem

os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

# name -> (ragas class name, constructor kwargs, required sample fields, description)
RAGAS_METRICS: dict[str, tuple[str, dict, tuple[str, ...], str]] = {
    "ragas_rouge_l": ("RougeScore", {"rouge_type": "rougeL", "mode": "fmeasure"}, ("reference",), "ragas RougeScore (ROUGE-L F1)"),
    "ragas_bleu": ("BleuScore", {}, ("reference",), "ragas BleuScore"),
    "ragas_exact_match": ("ExactMatch", {}, ("reference",), "ragas ExactMatch"),
    "ragas_string_presence": ("StringPresence", {}, ("reference",), "ragas StringPresence"),
    "ragas_string_similarity": ("NonLLMStringSimilarity", {}, ("reference",), "ragas NonLLMStringSimilarity"),
    "ragas_context_recall": ("NonLLMContextRecall", {}, ("reference", "contexts"), "ragas NonLLMContextRecall"),
    "ragas_context_precision": (
        "NonLLMContextPrecisionWithReference", {}, ("reference", "contexts"), "ragas NonLLMContextPrecisionWithReference",
    ),
}
RAGAS_LLM_METRICS: dict[str, str] = {
    "ragas_faithfulness": "Faithfulness",
    "ragas_answer_relevancy": "ResponseRelevancy",
    "ragas_llm_context_precision": "LLMContextPrecisionWithReference",
}

_INSTANCES: dict[str, Any] = {}


def _ragas_class(name: str):
    from autorag_hp.deps import require

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(require("ragas.metrics", "ragas metrics"), name)


def to_sample(answer: Answer, item: QAItem):
    """The ragas ``SingleTurnSample`` for one answer (see the module docstring for the mapping)."""
    from ragas.dataset_schema import SingleTurnSample

    return SingleTurnSample(
        user_input=item.question,
        response=answer.text,
        reference=item.answer,
        retrieved_contexts=[c.text for c in answer.contexts],
        reference_contexts=[item.answer] if item.answer is not None else None,
    )


def _clean(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _scorer(instance, needs: tuple[str, ...]) -> Callable[[Answer, QAItem], float | None]:
    def score(answer: Answer, item: QAItem) -> float | None:
        if "reference" in needs and item.answer is None:
            return None
        if "contexts" in needs and not answer.contexts:
            return 0.0  # nothing retrieved: nothing recalled, nothing precise
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _clean(instance.single_turn_score(to_sample(answer, item)))

    return score


def get_ragas_metric(name: str) -> Metric:
    """A ragas metric that needs no LLM, by its autorag-hp name (``ragas_rouge_l``, ...)."""
    if name in RAGAS_LLM_METRICS:
        raise UnknownMetricError(
            f"metric {name!r} is judged by an LLM: build it with "
            "autorag_hp.evaluation.ragas_metrics.ragas_llm_metrics(judge=<LangChain chat model>)"
        )
    if name not in RAGAS_METRICS:
        import difflib

        close = difflib.get_close_matches(name, [*RAGAS_METRICS, *RAGAS_LLM_METRICS], n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownMetricError(
            f"unknown ragas metric {name!r}.{hint} Known: {', '.join([*RAGAS_METRICS, *RAGAS_LLM_METRICS])}"
        )
    cls_name, kwargs, needs, desc = RAGAS_METRICS[name]
    if name not in _INSTANCES:
        _INSTANCES[name] = _ragas_class(cls_name)(**kwargs)
    return Metric(name, _scorer(_INSTANCES[name], needs), desc, "reference")


def ragas_llm_metrics(
    judge: Any,
    embeddings: Any = None,
    *,
    names: tuple[str, ...] = tuple(RAGAS_LLM_METRICS),
    strictness: int = 1,
    max_retries: int = 1,
    timeout_s: int = 600,
) -> dict[str, Metric]:
    """The LLM-judged ragas metrics, with ``judge`` (a LangChain chat model) as the LLM.

    ``embeddings`` (LangChain ``Embeddings``) is needed by ``ragas_answer_relevancy`` only; when omitted that
    metric is left out. ``strictness`` is how many questions answer relevancy generates back from the answer
    (ragas' default 3 costs three judge calls). A judge whose output cannot be parsed yields ``None`` for that
    answer, not an exception: weak local judges often fail to produce ragas' JSON.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ragas.embeddings import LangchainEmbeddingsWrapper
        from ragas.llms import LangchainLLMWrapper
        from ragas.run_config import RunConfig

        run_config = RunConfig(max_retries=max_retries, timeout=timeout_s, max_workers=1)
        llm = LangchainLLMWrapper(judge, run_config=run_config)
        emb = LangchainEmbeddingsWrapper(embeddings, run_config=run_config) if embeddings is not None else None
    out: dict[str, Metric] = {}
    for name in names:
        if name not in RAGAS_LLM_METRICS:
            raise UnknownMetricError(f"unknown LLM-judged ragas metric {name!r}; known: {', '.join(RAGAS_LLM_METRICS)}")
        cls = _ragas_class(RAGAS_LLM_METRICS[name])
        if name == "ragas_answer_relevancy":
            if emb is None:
                continue
            inst = cls(llm=llm, embeddings=emb, strictness=strictness)
            needs: tuple[str, ...] = ()
        elif name == "ragas_faithfulness":
            inst, needs = cls(llm=llm), ("contexts",)
        else:
            inst, needs = cls(llm=llm), ("reference", "contexts")
        inst.init(run_config)
        out[name] = Metric(name, _safe(_scorer(inst, needs)), f"ragas {RAGAS_LLM_METRICS[name]} judged by an LLM")
    return out


def _safe(fn: Callable[[Answer, QAItem], float | None]) -> Callable[[Answer, QAItem], float | None]:
    """None instead of an exception when the judge's output cannot be parsed (weak judges, truncated JSON)."""
    import json

    from langchain_core.exceptions import OutputParserException
    from pydantic import ValidationError
    from ragas.exceptions import RagasException

    unparseable = (RagasException, OutputParserException, ValidationError, json.JSONDecodeError)

    def score(answer: Answer, item: QAItem) -> float | None:
        try:
            return fn(answer, item)
        except unparseable:
            return None

    return score
