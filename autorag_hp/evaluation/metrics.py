"""Native evaluation metrics: fast, dependency-free, deterministic.

Every metric is a function ``fn(answer: Answer, item: QAItem) -> float | None`` registered under a name;
``None`` means "not applicable" (e.g. no reference answer or no gold sources). Look one up with
:func:`get_metric`, compute several with :func:`compute_metrics`::

    >>> from autorag_hp.types import Answer, Context, QAItem
    >>> a = Answer("Use the del statement.", contexts=(Context("faq/general#2", "..."),))
    >>> q = QAItem("How do I delete a name?", answer="the del statement", sources=("faq/general#2",))
    >>> compute_metrics(a, q, ["answer_contains_reference", "source_recall@1", "mrr"])
    {'answer_contains_reference': 1.0, 'source_recall@1': 1.0, 'mrr': 1.0}

Names ending in ``@K`` (``source_recall@3``, ``source_hit@5``) take the cut-off from the name. Names starting
with ``ragas_`` resolve to adapters in :mod:`autorag_hp.evaluation.ragas_metrics` (ragas imported lazily).

Definitions (``tokens`` = :func:`text_tokens`: for English, SQuAD's normalisation — lower-case, strip punctuation
and the articles a/an/the, split on spaces; for text with Chinese, CMRC 2018's convention — Chinese and ASCII
punctuation removed, every CJK character one token, Latin words kept whole; ``norm`` = the tokens joined by spaces):

- ``exact_match``: ``tokens(answer) == tokens(reference)``; ``exact_match_strict``: raw string equality
  (what ragas' ``ExactMatch`` computes).
- ``token_f1``: harmonic mean of token precision and recall of ``tokens(answer)`` against ``tokens(reference)``
  (bag-of-tokens overlap, SQuAD; on Chinese the character F1 of CMRC 2018 / DRCD); ``token_precision`` =
  overlap / answer tokens (is what the answer says in the reference? useful when references are long),
  ``token_recall`` = overlap / reference tokens.
- ``rouge_l``: ROUGE-L F1 by ``rouge_score`` (longest common subsequence, no stemming) over its tokens: lower-cased
  ``[a-z0-9]+`` runs, as ``rouge_score`` tokenizes, plus every CJK character (which ``rouge_score`` drops).
- ``answer_contains_reference``: ``norm(reference)`` is a substring of ``norm(answer)``;
  ``string_presence``: raw substring test (ragas' ``StringPresence``).
- ``source_recall@K``: fraction of the gold source ids found among the first K retrieved contexts
  (``source_recall``: among all); ``source_hit@K``: 1 if any gold source is in the first K.
  A context matches a gold id when its ``source`` equals it or starts with ``gold + "#"`` (chunk suffix).
- ``mrr``: ``1 / rank`` of the first context from a gold source, 0 if none.
- ``context_tokens``: number of word tokens (:func:`count_tokens`: ``\\w+`` runs, each CJK character, each other
  symbol) in all retrieved contexts; ``answer_tokens`` the same for the answer; ``total_tokens`` / ``latency_s``
  copy the answer's accounting.

Chinese words instead of characters: append ``:jieba`` to a text metric (``token_f1:jieba``, ``rouge_l:jieba``,
``ragas_rouge_l:jieba``; see :data:`CJK_MODES`): CJK runs are segmented by jieba, the segmenter BM25 uses
(:func:`autorag_hp.rag.language.segment`). English text scores the same either way.
"""

from __future__ import annotations

import difflib
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from autorag_hp.errors import AutoRAGHPError
from autorag_hp.rag.language import CJK_CHAR, CJK_RANGES, CJK_RUN, segment
from autorag_hp.types import Answer, QAItem

MetricFn = Callable[[Answer, QAItem], "float | None"]


class UnknownMetricError(AutoRAGHPError, KeyError):
    """No metric is registered under that name."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else "unknown metric"


@dataclass(frozen=True)
class Metric:
    """A named metric: ``fn(answer, item)`` returns a float, or ``None`` when it does not apply."""

    name: str
    fn: MetricFn
    description: str = ""
    needs: str = ""  # "reference", "sources" or "" (nothing beyond the answer)
    higher_is_better: bool = True

    def __call__(self, answer: Answer, item: QAItem) -> float | None:
        return self.fn(answer, item)


# ---------------------------------------------------------------------------------------------- text helpers
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)
_WORD = re.compile(rf"[{CJK_RANGES}]|[^\W{CJK_RANGES}]+|[^\w\s]")
#: Chinese punctuation (CJK symbols, full-width and vertical forms) and, in text with CJK characters, the
#: general punctuation Chinese shares with typography (“ ” ‘ ’ — … ·): each becomes a space.
_CJK_PUNCT = re.compile(r"[\u3000-\u303f\ufe10-\ufe1f\ufe30-\ufe6f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40"
                        r"\uff5b-\uff65\u2010-\u2027\u2030-\u205e\u00b7\uffe0-\uffe6]")
#: How CJK text becomes tokens: ``chars`` (one token per character, CMRC 2018; the default) or ``jieba`` (words).
CJK_MODES = ("chars", "jieba")


def normalize(text: str) -> str:
    """SQuAD normalisation: lower-case, drop punctuation and articles, collapse whitespace."""
    text = text.lower().translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def text_tokens(text: str, cjk: str = "chars") -> list[str]:
    """The tokens the text metrics compare. Without CJK characters: ``normalize(text).split()`` (SQuAD). With
    them (CMRC 2018): Chinese and ASCII punctuation removed, each CJK character a token (``cjk="jieba"``: each
    jieba word), Latin words whole and SQuAD-normalised.

    >>> text_tokens("Debian 是一个操作系统。")
    ['debian', '是', '一', '个', '操', '作', '系', '统']
    >>> text_tokens("Debian 是一个操作系统。", cjk="jieba")
    ['debian', '是', '一个', '操作系统']
    """
    if cjk not in CJK_MODES:
        raise ValueError(f"cjk must be one of {CJK_MODES}, got {cjk!r}")
    if not CJK_CHAR.search(text):
        return normalize(text).split()
    text = _CJK_PUNCT.sub(" ", text.lower()).translate(_PUNCT)
    text = _ARTICLES.sub(" ", CJK_RUN.sub(lambda m: f" {m.group()} ", text))
    out: list[str] = []
    for word in text.split():
        if CJK_CHAR.match(word):
            out.extend(word if cjk == "chars" else segment(word))
        else:
            out.append(word)
    return out


def count_tokens(text: str) -> int:
    """Word-level token count (``\\w+`` runs, each CJK character, each other symbol); tokenizer-independent and
    fast. Chinese counts one token per character; SmolLM2's English byte-level BPE spends 2.2 per CJK character,
    1.70x this count on the Debian Reference (zh-CN) against 1.14x on the English FAQ (eval/results/zh_metrics)."""
    return len(_WORD.findall(text))


class RougeTokenizer:
    """``rouge_score``'s tokenizer (lower-cased ``[a-z0-9]+`` runs, Porter-stemmed when ``stem``) for the text
    between CJK runs, and each CJK character (``cjk="jieba"``: jieba word) as a token: ``rouge_score`` alone
    drops every non-ASCII character. English text tokenizes exactly as ``rouge_score``'s default tokenizer."""

    def __init__(self, cjk: str = "chars", stem: bool = False):
        from autorag_hp.deps import require

        if cjk not in CJK_MODES:
            raise ValueError(f"cjk must be one of {CJK_MODES}, got {cjk!r}")
        self.cjk = cjk
        self._tokenize = require("rouge_score.tokenize", "the rouge_l metric").tokenize
        self._stemmer = None
        if stem:
            from nltk.stem import porter

            self._stemmer = porter.PorterStemmer()

    def tokenize(self, text: str) -> list[str]:
        out: list[str] = []
        pos = 0
        for m in CJK_RUN.finditer(text):
            out += self._tokenize(text[pos : m.start()], self._stemmer)
            out += list(m.group()) if self.cjk == "chars" else segment(m.group())
            pos = m.end()
        return out + self._tokenize(text[pos:], self._stemmer)


_ROUGE: dict[str, object] = {}


def rouge_scorer(cjk: str = "chars", stem: bool = False):
    """A ``rouge_score.rouge_scorer.RougeScorer(["rougeL"])`` with :class:`RougeTokenizer` (built once)."""
    key = f"{cjk}:{stem}"
    if key not in _ROUGE:
        from autorag_hp.deps import require

        mod = require("rouge_score.rouge_scorer", "the rouge_l metric")
        _ROUGE[key] = mod.RougeScorer(["rougeL"], tokenizer=RougeTokenizer(cjk, stem))
    return _ROUGE[key]


def _f1(overlap: float, n_pred: int, n_ref: int) -> float:
    if overlap <= 0 or n_pred == 0 or n_ref == 0:
        return 0.0
    p, r = overlap / n_pred, overlap / n_ref
    return 2 * p * r / (p + r)


# ---------------------------------------------------------------------------------------------- metrics
def _ref(item: QAItem) -> str | None:
    return item.answer if item.answer is not None else None


def exact_match(answer: Answer, item: QAItem, cjk: str = "chars") -> float | None:
    ref = _ref(item)
    return None if ref is None else float(text_tokens(answer.text, cjk) == text_tokens(ref, cjk))


def exact_match_strict(answer: Answer, item: QAItem) -> float | None:
    ref = _ref(item)
    return None if ref is None else float(answer.text == ref)


def _overlap(answer: Answer, item: QAItem, cjk: str) -> tuple[int, int, int] | None:
    ref = _ref(item)
    if ref is None:
        return None
    pred, gold = text_tokens(answer.text, cjk), text_tokens(ref, cjk)
    return sum((Counter(pred) & Counter(gold)).values()), len(pred), len(gold)


def token_f1(answer: Answer, item: QAItem, cjk: str = "chars") -> float | None:
    o = _overlap(answer, item, cjk)
    if o is None:
        return None
    return 1.0 if o[1] == o[2] == 0 else _f1(*o)


def token_precision(answer: Answer, item: QAItem, cjk: str = "chars") -> float | None:
    o = _overlap(answer, item, cjk)
    return None if o is None else (o[0] / o[1] if o[1] else 0.0)


def token_recall(answer: Answer, item: QAItem, cjk: str = "chars") -> float | None:
    o = _overlap(answer, item, cjk)
    return None if o is None else (o[0] / o[2] if o[2] else 0.0)


def rouge_l(answer: Answer, item: QAItem, cjk: str = "chars") -> float | None:
    ref = _ref(item)
    return None if ref is None else float(rouge_scorer(cjk).score(ref, answer.text)["rougeL"].fmeasure)


def answer_contains_reference(answer: Answer, item: QAItem, cjk: str = "chars") -> float | None:
    ref = _ref(item)
    if ref is None:
        return None
    return float(" ".join(text_tokens(ref, cjk)) in " ".join(text_tokens(answer.text, cjk)))


def string_presence(answer: Answer, item: QAItem) -> float | None:
    ref = _ref(item)
    return None if ref is None else float(ref in answer.text)


def _matches(source: str, gold: str) -> bool:
    return source == gold or source.startswith(gold + "#")


def source_recall(answer: Answer, item: QAItem, k: int | None = None) -> float | None:
    if not item.sources:
        return None
    ctx = answer.contexts if k is None else answer.contexts[:k]
    found = sum(1 for g in set(item.sources) if any(_matches(c.source, g) for c in ctx))
    return found / len(set(item.sources))


def source_hit(answer: Answer, item: QAItem, k: int | None = None) -> float | None:
    if not item.sources:
        return None
    ctx = answer.contexts if k is None else answer.contexts[:k]
    return float(any(_matches(c.source, g) for c in ctx for g in item.sources))


def mrr(answer: Answer, item: QAItem) -> float | None:
    if not item.sources:
        return None
    for rank, c in enumerate(answer.contexts, start=1):
        if any(_matches(c.source, g) for g in item.sources):
            return 1.0 / rank
    return 0.0


def context_tokens(answer: Answer, item: QAItem) -> float:
    return float(sum(count_tokens(c.text) for c in answer.contexts))


def answer_tokens(answer: Answer, item: QAItem) -> float:
    return float(count_tokens(answer.text))


def total_tokens(answer: Answer, item: QAItem) -> float:
    return float(answer.prompt_tokens + answer.completion_tokens)


def latency(answer: Answer, item: QAItem) -> float:
    return float(answer.latency_s)


NATIVE_METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("exact_match", exact_match, "normalised answer == normalised reference", "reference"),
        Metric("exact_match_strict", exact_match_strict, "answer == reference, character for character", "reference"),
        Metric("token_f1", token_f1, "SQuAD token-overlap F1 against the reference", "reference"),
        Metric("token_precision", token_precision, "share of answer tokens found in the reference", "reference"),
        Metric("token_recall", token_recall, "share of reference tokens found in the answer", "reference"),
        Metric("rouge_l", rouge_l, "ROUGE-L F1 (longest common subsequence) against the reference", "reference"),
        Metric("answer_contains_reference", answer_contains_reference, "normalised reference inside the answer", "reference"),
        Metric("string_presence", string_presence, "reference string inside the answer, verbatim", "reference"),
        Metric("source_recall", source_recall, "fraction of gold sources among all retrieved contexts", "sources"),
        Metric("source_recall@1", lambda a, q: source_recall(a, q, 1), "gold-source recall in the top 1", "sources"),
        Metric("source_recall@3", lambda a, q: source_recall(a, q, 3), "gold-source recall in the top 3", "sources"),
        Metric("source_recall@5", lambda a, q: source_recall(a, q, 5), "gold-source recall in the top 5", "sources"),
        Metric("mrr", mrr, "reciprocal rank of the first context from a gold source", "sources"),
        Metric("context_tokens", context_tokens, "word tokens in the retrieved contexts", "", False),
        Metric("answer_tokens", answer_tokens, "word tokens in the answer", "", False),
        Metric("total_tokens", total_tokens, "prompt + completion tokens of the LLM call", "", False),
        Metric("latency_s", latency, "seconds the pipeline took", "", False),
    ]
}

#: The metrics the grid runner computes by default (cheap; all native ones).
DEFAULT_METRICS: tuple[str, ...] = tuple(NATIVE_METRICS)
#: The native metrics that tokenize text: each also comes as ``NAME:jieba`` (Chinese as jieba words).
TOKENIZED_METRICS = ("exact_match", "token_f1", "token_precision", "token_recall", "rouge_l",
                     "answer_contains_reference")

_AT_K = re.compile(r"^(source_recall|source_hit)@(\d+)$")


def available_metrics() -> list[str]:
    """Every name :func:`get_metric` accepts (``@K`` variants shown for K = 1, 3, 5)."""
    from autorag_hp.evaluation.ragas_metrics import RAGAS_LLM_METRICS, RAGAS_METRICS, RAGAS_TOKENIZED

    extra = [f"source_hit@{k}" for k in (1, 3, 5)]
    words = [f"{n}:jieba" for n in (*TOKENIZED_METRICS, *RAGAS_TOKENIZED)]
    return sorted([*NATIVE_METRICS, *extra, *words, *RAGAS_METRICS, *RAGAS_LLM_METRICS])


def _with_cjk(name: str) -> Metric:
    """``NAME:MODE`` (``token_f1:jieba``): a text metric with CJK text tokenized as ``MODE`` (:data:`CJK_MODES`)."""
    base, _, mode = name.rpartition(":")
    if mode not in CJK_MODES:
        raise UnknownMetricError(f"metric {name!r}: after ':' give how Chinese is tokenized, one of {CJK_MODES}")
    if base.startswith("ragas_"):
        from autorag_hp.evaluation.ragas_metrics import get_ragas_metric

        return get_ragas_metric(base, cjk=mode)
    if base not in TOKENIZED_METRICS:
        raise UnknownMetricError(f"metric {name!r}: only the text metrics {', '.join(TOKENIZED_METRICS)} (and "
                                 "ragas_rouge_l, ragas_bleu) tokenize Chinese; drop the ':{mode}'")
    m = NATIVE_METRICS[base]
    return Metric(name, lambda a, q, _fn=m.fn: _fn(a, q, cjk=mode), f"{m.description} (Chinese as {mode})", m.needs)


def get_metric(name: str) -> Metric:
    """Return the metric registered as ``name``.

    Raises :class:`UnknownMetricError` naming close matches and where to look for the full list.
    """
    if name in NATIVE_METRICS:
        return NATIVE_METRICS[name]
    m = _AT_K.match(name)
    if m:
        fn = source_recall if m.group(1) == "source_recall" else source_hit
        k = int(m.group(2))
        if k < 1:
            raise UnknownMetricError(f"metric {name!r}: the cut-off K in '@K' must be at least 1")
        return Metric(name, lambda a, q, _k=k, _fn=fn: _fn(a, q, _k), f"{m.group(1)} in the top {k}", "sources")
    if ":" in name:
        return _with_cjk(name)
    if name.startswith("ragas_"):
        from autorag_hp.evaluation.ragas_metrics import get_ragas_metric

        return get_ragas_metric(name)
    names = available_metrics()
    close = difflib.get_close_matches(name, names, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise UnknownMetricError(
        f"unknown metric {name!r}.{hint} Known metrics: {', '.join(names)} "
        "(see autorag_hp.evaluation.metrics.available_metrics())."
    )


def resolve_metrics(names: Iterable[str | Metric] | None) -> list[Metric]:
    """Turn names (or Metric objects) into metrics, failing on the first unknown name before any work."""
    if names is None:
        return [NATIVE_METRICS[n] for n in DEFAULT_METRICS]
    return [n if isinstance(n, Metric) else get_metric(n) for n in names]


def compute_metrics(
    answer: Answer, item: QAItem, names: Iterable[str | Metric] | None = None
) -> dict[str, float | None]:
    """Compute the named metrics (default: :data:`DEFAULT_METRICS`) for one answer; ``None`` = not applicable."""
    return {m.name: m(answer, item) for m in resolve_metrics(names)}
