"""Our metrics as ``(question, output, reference) -> float`` evaluators, the shape LangChain apps pass around.

A metric (:mod:`autorag_hp.evaluation.metrics`) scores an :class:`~autorag_hp.types.Answer` against a
:class:`~autorag_hp.types.QAItem`; an app has a question, its chain's output and a reference. :func:`evaluator`
turns the one into the other, for the native metrics and the ragas ones alike::

    >>> from autorag_hp.evaluation import evaluator
    >>> f1 = evaluator("token_f1")
    >>> f1("How do I delete a name?", "Use the del statement.", "the del statement")
    0.8

What each argument may be:

- ``question``: a string, a mapping with ``"question"`` / ``"input"`` / ``"query"``, or a ``QAItem``'s text.
- ``output``: a string, a chat message (its ``.content``), an :class:`~autorag_hp.types.Answer`, or a mapping
  with the text under ``"answer"`` / ``"output"`` / ``"result"`` / ``"text"`` and, for retrieval metrics,
  the retrieved documents under ``"context"`` / ``"contexts"`` / ``"source_documents"`` (LangChain
  ``Document`` s, whose ``metadata["source"]`` is the source id, or plain strings).
- ``reference``: the reference answer (a string), a mapping with ``"answer"`` and/or ``"sources"``, or a
  :class:`~autorag_hp.types.QAItem`.

A metric that does not apply (``token_f1`` without a reference answer, ``mrr`` without gold sources) raises
a ``ValueError`` saying what to pass, instead of returning a number that means nothing. The result is a reward
(higher is better): a metric where lower is better (``answer_tokens``, ``latency_s``) comes negated, unless
``maximize=False``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from autorag_hp.types import Answer, Context, QAItem

__all__ = ["evaluator", "to_answer", "to_item"]

_QUESTION_KEYS = ("question", "input", "query")
_TEXT_KEYS = ("answer", "output", "result", "text", "content")
_CONTEXT_KEYS = ("context", "contexts", "source_documents", "documents")
_NEEDS = {"reference": "a reference answer (reference='...' or {'answer': ...})",
          "sources": "gold source ids (reference={'sources': [...]}) and retrieved contexts in the output"}


def _question(question: Any) -> str:
    if isinstance(question, QAItem):
        return question.question
    if isinstance(question, Mapping):
        for key in _QUESTION_KEYS:
            if isinstance(question.get(key), str):
                return question[key]
        raise ValueError(f"the question mapping has none of the keys {list(_QUESTION_KEYS)}; got {sorted(question)}")
    return "" if question is None else str(question)


def _text(value: Any) -> str:
    content = getattr(value, "content", value)  # a chat message, or the value itself
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks of a chat message
        return "".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content if isinstance(b, str | dict))
    raise TypeError(f"cannot read answer text from {type(value).__name__}; pass a string, a chat message, "
                    f"an Answer or a mapping with one of {list(_TEXT_KEYS)}")


def _context(doc: Any, rank: int) -> Context:
    if isinstance(doc, Context):
        return doc
    if isinstance(doc, str):
        return Context(f"#{rank}", doc)
    text = getattr(doc, "page_content", None)
    if not isinstance(text, str):
        raise TypeError(f"a retrieved context must be a LangChain Document, a Context or a string, "
                        f"got {type(doc).__name__}")
    meta = getattr(doc, "metadata", None) or {}
    return Context(str(meta.get("source", meta.get("id", f"#{rank}"))), text, meta.get("score"))


def to_answer(output: Any) -> Answer:
    """The :class:`~autorag_hp.types.Answer` a chain's output stands for (see the module docstring)."""
    if isinstance(output, Answer):
        return output
    if isinstance(output, Mapping):
        text_key = next((k for k in _TEXT_KEYS if k in output), None)
        if text_key is None:
            raise ValueError(f"the output mapping has none of the answer keys {list(_TEXT_KEYS)}; got {sorted(output)}")
        docs = next((output[k] for k in _CONTEXT_KEYS if k in output), ()) or ()
        if isinstance(docs, str | bytes) or not isinstance(docs, Sequence):
            docs = [docs]
        return Answer(_text(output[text_key]), tuple(_context(d, i) for i, d in enumerate(docs, start=1)))
    return Answer(_text(output))


def to_item(question: Any, reference: Any) -> QAItem:
    """The :class:`~autorag_hp.types.QAItem` of a question and its reference (see the module docstring)."""
    if isinstance(reference, QAItem):
        return reference
    if isinstance(reference, Mapping):
        unknown = sorted(set(reference) - {"answer", "sources", "id"})
        if unknown:
            raise ValueError(f"unknown reference key(s) {unknown}; a reference mapping has 'answer' and/or 'sources'")
        sources = reference.get("sources") or ()
        sources = (sources,) if isinstance(sources, str) else tuple(sources)
        return QAItem(_question(question), reference.get("answer"), sources, reference.get("id"))
    if reference is not None and not isinstance(reference, str):
        raise TypeError(f"reference must be a string, a mapping or a QAItem, got {type(reference).__name__}")
    return QAItem(_question(question), reference)


def evaluator(metric: Any, *, maximize: bool = True) -> Callable[[Any, Any, Any], float]:
    """``fn(question, output, reference) -> float`` for a metric given by name (``"token_f1"``,
    ``"source_recall@3"``, ``"ragas_rouge_l"``...: :func:`~autorag_hp.evaluation.metrics.available_metrics`)
    or as a :class:`~autorag_hp.evaluation.metrics.Metric` (e.g. one of
    :func:`~autorag_hp.evaluation.ragas_metrics.ragas_llm_metrics`). Unknown names fail here, not on first use.
    The function carries the metric as ``.metric``; its ``__name__`` is the metric's name."""
    from autorag_hp.evaluation.metrics import Metric, get_metric

    m = metric if isinstance(metric, Metric) else get_metric(metric)
    sign = -1.0 if maximize and not m.higher_is_better else 1.0

    def evaluate(question: Any, output: Any, reference: Any = None) -> float:
        answer, item = to_answer(output), to_item(question, reference)
        value = m(answer, item)
        if value is None:
            lacking = (m.needs == "reference" and item.answer is None) or (m.needs == "sources" and not item.sources)
            if lacking:
                raise ValueError(f"metric {m.name!r} does not apply here: it needs {_NEEDS[m.needs]}")
            raise ValueError(f"metric {m.name!r} gave no score for this answer (an LLM judge whose reply could "
                             "not be parsed, or an input it cannot score); report a reward yourself for this one")
        return sign * float(value)

    evaluate.__name__ = evaluate.__qualname__ = m.name
    evaluate.metric = m  # type: ignore[attr-defined]
    return evaluate
