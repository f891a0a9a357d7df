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

Chinese: ragas' ``RougeScore`` tokenizes with ``rouge_score``, which drops every non-ASCII character, and
``BleuScore`` with sacrebleu's ``13a``, which leaves a Chinese clause one word. The two adapters tokenize Chinese
as the native metrics do: ``ragas_rouge_l`` scores with :class:`~autorag_hp.evaluation.metrics.RougeTokenizer`
(ragas' own RougeScore, given that tokenizer through its ``rouge_scorer`` attribute), ``ragas_bleu`` with
sacrebleu's ``zh`` tokenizer (each CJK character a token, the rest as ``13a``) when the answer or reference has
CJK characters. ``NAME:jieba`` (``ragas_rouge_l:jieba``, ``ragas_bleu:jieba``) scores jieba words instead.
English text scores exactly as ragas alone. The other adapters compare raw strings or characters and need no
tokenizer.

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

from autorag_hp.evaluation.metrics import CJK_MODES, Metric, RougeTokenizer, UnknownMetricError
from autorag_hp.rag.language import CJK_CHAR, CJK_RUN, segment
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
#: The adapters whose score depends on how text is tokenized (each also comes as ``NAME:jieba``).
RAGAS_TOKENIZED = ("ragas_rouge_l", "ragas_bleu")
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


class _RougeModule:
    """What ragas' ``RougeScore`` reads from its ``rouge_scorer`` attribute (the ``rouge_score.rouge_scorer``
    module): a ``RougeScorer(types, use_stemmer=)`` factory, here one that tokenizes with :class:`RougeTokenizer`."""

    def __init__(self, cjk: str):
        self.cjk = cjk

    def RougeScorer(self, rouge_types, use_stemmer=False):  # noqa: N802 - the name ragas calls
        from rouge_score import rouge_scorer

        return rouge_scorer.RougeScorer(rouge_types, tokenizer=RougeTokenizer(self.cjk, stem=use_stemmer))


def _jieba_spaced(text: str | None) -> str | None:
    """Spaces between jieba words of every CJK run, so sacrebleu's ``13a`` sees them as words."""
    return None if text is None else CJK_RUN.sub(lambda m: " " + " ".join(segment(m.group())) + " ", text)


def _scorer(instance, needs: tuple[str, ...], zh=None, zh_text=None) -> Callable[[Answer, QAItem], float | None]:
    """The score of ``instance`` on the ragas sample; for a sample with CJK characters ``zh`` scores instead (when
    given) on texts rewritten by ``zh_text`` (when given)."""
    def score(answer: Answer, item: QAItem) -> float | None:
        if "reference" in needs and item.answer is None:
            return None
        if "contexts" in needs and not answer.contexts:
            return 0.0  # nothing retrieved: nothing recalled, nothing precise
        sample, inst = to_sample(answer, item), instance
        if zh is not None and CJK_CHAR.search(f"{sample.response} {sample.reference}"):
            inst = zh
            if zh_text is not None:
                sample = sample.model_copy(update={"response": zh_text(sample.response),
                                                   "reference": zh_text(sample.reference)})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _clean(inst.single_turn_score(sample))

    return score


def _build(name: str, cjk: str):
    """``(instance, zh instance or None, zh text rewrite or None)`` for a non-LLM ragas metric."""
    cls_name, kwargs, _, _ = RAGAS_METRICS[name]
    cls = _ragas_class(cls_name)
    inst = cls(**kwargs)
    if name == "ragas_rouge_l":
        inst.rouge_scorer = _RougeModule(cjk)  # English tokenizes as rouge_score's own tokenizer: same scores
        return inst, None, None
    if name == "ragas_bleu":
        return (inst, cls(**kwargs, kwargs={"tokenize": "zh"}), None) if cjk == "chars" else (inst, cls(**kwargs),
                                                                                              _jieba_spaced)
    return inst, None, None


def get_ragas_metric(name: str, cjk: str = "chars") -> Metric:
    """A ragas metric that needs no LLM, by its autorag-hp name (``ragas_rouge_l``, ...); ``cjk`` is how the
    tokenizing ones (:data:`RAGAS_TOKENIZED`) split Chinese: ``chars`` or ``jieba``."""
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
    if cjk not in CJK_MODES or (cjk != "chars" and name not in RAGAS_TOKENIZED):
        raise UnknownMetricError(f"metric {name}:{cjk}: only {', '.join(RAGAS_TOKENIZED)} tokenize Chinese, as one "
                                 f"of {CJK_MODES}")
    _, _, needs, desc = RAGAS_METRICS[name]
    key = name if cjk == "chars" else f"{name}:{cjk}"
    if key not in _INSTANCES:
        _INSTANCES[key] = _build(name, cjk)
    inst, zh, zh_text = _INSTANCES[key]
    return Metric(key, _scorer(inst, needs, zh, zh_text), desc + ("" if cjk == "chars" else " (Chinese as jieba words)"),
                  "reference")


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
