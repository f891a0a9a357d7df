"""Metrics on hand-made examples with known values; native and ragas agree where they measure the same thing."""

from __future__ import annotations

import pytest

from autorag_hp.evaluation.metrics import (
    UnknownMetricError,
    compute_metrics,
    get_metric,
    normalize,
)
from autorag_hp.types import Answer, Context, QAItem

CTX = (
    Context("faq/general.rst#3", "Python is an interpreted language.", 0.9),
    Context("faq/library.rst#1", "Use the random module for random numbers.", 0.5),
    Context("faq/general.rst#7", "Guido van Rossum created Python.", 0.2),
)


def ans(text: str, contexts=CTX) -> Answer:
    return Answer(text, contexts=contexts, prompt_tokens=100, completion_tokens=20, latency_s=0.5)


def test_normalize_squad_style():
    assert normalize("The  Cat, sat!") == "cat sat"


def test_exact_match_and_strict():
    q = QAItem("who?", answer="Guido van Rossum")
    assert get_metric("exact_match")(ans("guido van rossum."), q) == 1.0
    assert get_metric("exact_match_strict")(ans("guido van rossum."), q) == 0.0
    assert get_metric("exact_match_strict")(ans("Guido van Rossum"), q) == 1.0


def test_token_f1_known_value():
    q = QAItem("q", answer="the quick brown fox")  # normalised: quick brown fox (3 tokens)
    # answer tokens: quick fox jumps (3); overlap 2 -> P = R = 2/3 -> F1 = 2/3
    assert get_metric("token_f1")(ans("A quick fox jumps"), q) == pytest.approx(2 / 3)
    assert get_metric("token_f1")(ans("nothing shared"), q) == 0.0


def test_rouge_l_known_value():
    q = QAItem("q", answer="a b c d e")
    # LCS("a b c d e", "a x c y e") = a c e = 3 -> P = R = 3/5
    assert get_metric("rouge_l")(ans("a x c y e"), q) == pytest.approx(0.6)
    q2 = QAItem("q", answer="police killed the gunman")
    # LCS with "the gunman was killed by police" = (the gunman) or (police) ... = 2 -> P=2/6, R=2/4
    assert get_metric("rouge_l")(ans("the gunman was killed by police"), q2) == pytest.approx(
        2 * (2 / 6) * (2 / 4) / ((2 / 6) + (2 / 4))
    )


def test_contains_reference_and_string_presence():
    q = QAItem("q", answer="Random module")
    assert get_metric("answer_contains_reference")(ans("Use the random module."), q) == 1.0
    assert get_metric("string_presence")(ans("Use the random module."), q) == 0.0  # case differs
    assert get_metric("string_presence")(ans("Use the Random module."), q) == 1.0


def test_source_recall_and_mrr():
    q = QAItem("q", sources=("faq/library.rst", "faq/design.rst"))
    a = ans("x")
    assert get_metric("source_recall")(a, q) == 0.5
    assert get_metric("source_recall@1")(a, q) == 0.0
    assert get_metric("source_recall@2")(a, q) == 0.5
    assert get_metric("source_hit@1")(a, q) == 0.0
    assert get_metric("source_hit@2")(a, q) == 1.0
    assert get_metric("mrr")(a, q) == 0.5
    assert get_metric("mrr")(ans("x", contexts=()), q) == 0.0
    # exact id match, chunk-suffix match, and no false prefix match
    assert get_metric("mrr")(a, QAItem("q", sources=("faq/general.rst#7",))) == pytest.approx(1 / 3)
    assert get_metric("mrr")(a, QAItem("q", sources=("faq/gen",))) == 0.0


def test_token_accounting_metrics():
    a = ans("Hello, world")
    out = compute_metrics(a, QAItem("q"), ["context_tokens", "answer_tokens", "total_tokens", "latency_s"])
    assert out == {"context_tokens": 6 + 8 + 6, "answer_tokens": 3, "total_tokens": 120, "latency_s": 0.5}


def test_not_applicable_is_none():
    out = compute_metrics(ans("x"), QAItem("q"), ["exact_match", "token_f1", "mrr", "source_recall@3"])
    assert out == {"exact_match": None, "token_f1": None, "mrr": None, "source_recall@3": None}


def test_default_metrics_all_present():
    out = compute_metrics(ans("Guido"), QAItem("q", answer="Guido", sources=("faq/general.rst",)))
    assert out["exact_match"] == 1.0 and out["mrr"] == 1.0 and out["source_recall@5"] == 1.0


def test_unknown_metric_is_a_clear_error():
    with pytest.raises(UnknownMetricError, match=r"unknown metric 'rouge_k'.*Did you mean 'rouge_l'"):
        get_metric("rouge_k")
    with pytest.raises(UnknownMetricError, match="ragas_llm_metrics"):
        get_metric("ragas_faithfulness")
    with pytest.raises(UnknownMetricError, match="Known"):
        get_metric("ragas_nonsense")
    with pytest.raises(UnknownMetricError):
        compute_metrics(ans("x"), QAItem("q"), ["exact_match", "no_such_metric"])


# --------------------------------------------------------------------------------------------- ragas
PAIRS = [
    ("Guido van Rossum", "Guido van Rossum"),
    ("guido van rossum", "Guido van Rossum"),
    ("Python was created by Guido van Rossum in 1991", "Guido van Rossum"),
    ("Use the random module", "the random module of the standard library"),
    ("a b c d e", "a x c y e"),
    ("", "something"),
    ("The del statement removes a name", "del removes a binding"),
]


@pytest.mark.parametrize(("response", "reference"), PAIRS)
def test_native_and_ragas_agree(response, reference):
    a, q = ans(response), QAItem("q", answer=reference)
    pairs = {"rouge_l": "ragas_rouge_l", "exact_match_strict": "ragas_exact_match", "string_presence": "ragas_string_presence"}
    for native, rag in pairs.items():
        assert get_metric(native)(a, q) == pytest.approx(get_metric(rag)(a, q), abs=1e-9), (native, rag)


def test_ragas_non_llm_metrics_known_values():
    q = QAItem("q", answer="Guido van Rossum created Python.")
    a = ans("Guido van Rossum created Python.")
    out = compute_metrics(
        a, q, ["ragas_bleu", "ragas_string_similarity", "ragas_context_recall", "ragas_context_precision"]
    )
    assert out["ragas_bleu"] == pytest.approx(1.0)
    assert out["ragas_string_similarity"] == pytest.approx(1.0)
    assert out["ragas_context_recall"] == 1.0  # the third context is the reference verbatim
    assert out["ragas_context_precision"] == pytest.approx(1 / 3)  # relevant only at rank 3 -> AP = (1/3)/1
    none = compute_metrics(ans("x", contexts=()), q, ["ragas_context_recall"])
    assert none == {"ragas_context_recall": 0.0}
    assert compute_metrics(a, QAItem("q"), ["ragas_bleu"]) == {"ragas_bleu": None}


def test_token_precision_and_recall():
    q = QAItem("q", answer="the quick brown fox jumps over the lazy dog")  # 7 tokens after normalisation
    a = ans("A quick fox")  # quick fox: 2 tokens, both in the reference
    assert get_metric("token_precision")(a, q) == 1.0
    assert get_metric("token_recall")(a, q) == pytest.approx(2 / 7)


# ------------------------------------------------------------------------------- rouge-score keeps the values
def _old_rouge_l(response: str, reference: str) -> float:
    """The hand-written ROUGE-L F1 that rouge-score replaced: LCS of lower-cased [a-z0-9]+ tokens."""
    import re

    pred, gold = re.findall(r"[a-z0-9]+", response.lower()), re.findall(r"[a-z0-9]+", reference.lower())
    if not pred or not gold:
        return 0.0
    prev = [0] * (len(pred) + 1)
    for x in gold:
        cur = [0]
        for j, y in enumerate(pred):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    p, r = lcs / len(pred), lcs / len(gold)
    return 2 * p * r / (p + r)


def test_rouge_l_by_rouge_score_equals_the_hand_written_lcs():
    """rouge_l now scores with rouge_score (RougeTokenizer): on English its values are the old ones exactly, over
    the FAQ's 175 reference answers against each other's answers and their own first sentence."""
    from autorag_hp.rag import load_bundled_questions

    refs = [q.answer for q in load_bundled_questions("python_docs_faq") if q.answer][:175]
    pairs = [(refs[i], refs[(i + 1) % len(refs)]) for i in range(len(refs))]
    pairs += [(r.split(". ")[0][:300], r[:600]) for r in refs] + PAIRS + [("", ""), ("!!!", "a")]
    rouge = get_metric("rouge_l")
    for response, reference in pairs:
        assert rouge(ans(response), QAItem("q", answer=reference)) == pytest.approx(
            _old_rouge_l(response, reference), abs=1e-12), (response[:60], reference[:60])
