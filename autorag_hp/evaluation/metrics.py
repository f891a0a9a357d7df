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

Definitions (``norm`` = lower-case, strip punctuation and the articles a/an/the, collapse spaces, as in SQuAD):

- ``exact_match``: ``norm(answer) == norm(reference)``; ``exact_match_strict``: raw string equality
  (what ragas' ``ExactMatch`` computes).
- ``token_f1``: harmonic mean of token precision and recall of ``norm(answer)`` against ``norm(reference)``
  (bag-of-tokens overlap, SQuAD); ``token_precision`` = overlap / answer tokens (is what the answer says in the
  reference? useful when references are long), ``token_recall`` = overlap / reference tokens.
- ``rouge_l``: ROUGE-L F1 — longest common subsequence of lower-cased alphanumeric tokens,
  ``F = 2PR/(P+R)`` with ``P = LCS/len(answer)``, ``R = LCS/len(reference)`` (as ``rouge_score``, no stemming).
- ``answer_contains_reference``: ``norm(reference)`` is a substring of ``norm(answer)``;
  ``string_presence``: raw substring test (ragas' ``StringPresence``).
- ``source_recall@K``: fraction of the gold source ids found among the first K retrieved contexts
  (``source_recall``: among all); ``source_hit@K``: 1 if any gold source is in the first K.
  A context matches a gold id when its ``source`` equals it or starts with ``gold + "#"`` (chunk suffix).
- ``mrr``: ``1 / rank`` of the first context from a gold source, 0 if none.
- ``context_tokens``: number of word tokens (``\\w+`` or a single non-space symbol) in all retrieved contexts;
  ``answer_tokens`` the same for the answer; ``total_tokens`` / ``latency_s`` copy the answer's accounting.
"""

from __future__ import annotations

import difflib
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from autorag_hp.errors import AutoRAGHPError
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
_WORD = re.compile(r"\w+|[^\w\s]")
_ALNUM = re.compile(r"[a-z0-9]+")


def normalize(text: str) -> str:
    """SQuAD normalisation: lower-case, drop punctuation and articles, collapse whitespace."""
    text = text.lower().translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def count_tokens(text: str) -> int:
    """Word-level token count (``\\w+`` runs and single symbols); tokenizer-independent and fast."""
    return len(_WORD.findall(text))


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def _f1(overlap: float, n_pred: int, n_ref: int) -> float:
    if overlap <= 0 or n_pred == 0 or n_ref == 0:
        return 0.0
    p, r = overlap / n_pred, overlap / n_ref
    return 2 * p * r / (p + r)


# ---------------------------------------------------------------------------------------------- metrics
def _ref(item: QAItem) -> str | None:
    return item.answer if item.answer is not None else None


def exact_match(answer: Answer, item: QAItem) -> float | None:
    ref = _ref(item)
    return None if ref is None else float(normalize(answer.text) == normalize(ref))


def exact_match_strict(answer: Answer, item: QAItem) -> float | None:
    ref = _ref(item)
    return None if ref is None else float(answer.text == ref)


def token_f1(answer: Answer, item: QAItem) -> float | None:
    ref = _ref(item)
    if ref is None:
        return None
    pred, gold = normalize(answer.text).split(), normalize(ref).split()
    if not pred and not gold:
        return 1.0
    overlap = sum((Counter(pred) & Counter(gold)).values())
    return _f1(overlap, len(pred), len(gold))


def _overlap(answer: Answer, item: QAItem) -> tuple[int, int, int] | None:
    ref = _ref(item)
    if ref is None:
        return None
    pred, gold = normalize(answer.text).split(), normalize(ref).split()
    return sum((Counter(pred) & Counter(gold)).values()), len(pred), len(gold)


def token_precision(answer: Answer, item: QAItem) -> float | None:
    o = _overlap(answer, item)
    return None if o is None else (o[0] / o[1] if o[1] else 0.0)


def token_recall(answer: Answer, item: QAItem) -> float | None:
    o = _overlap(answer, item)
    return None if o is None else (o[0] / o[2] if o[2] else 0.0)


def rouge_l(answer: Answer, item: QAItem) -> float | None:
    ref = _ref(item)
    if ref is None:
        return None
    pred, gold = _ALNUM.findall(answer.text.lower()), _ALNUM.findall(ref.lower())
    return _f1(_lcs(gold, pred), len(pred), len(gold))


def answer_contains_reference(answer: Answer, item: QAItem) -> float | None:
    ref = _ref(item)
    return None if ref is None else float(normalize(ref) in normalize(answer.text))


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

_AT_K = re.compile(r"^(source_recall|source_hit)@(\d+)$")


def available_metrics() -> list[str]:
    """Every name :func:`get_metric` accepts (``@K`` variants shown for K = 1, 3, 5)."""
    from autorag_hp.evaluation.ragas_metrics import RAGAS_LLM_METRICS, RAGAS_METRICS

    extra = [f"source_hit@{k}" for k in (1, 3, 5)]
    return sorted([*NATIVE_METRICS, *extra, *RAGAS_METRICS, *RAGAS_LLM_METRICS])


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
