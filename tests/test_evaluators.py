"""Our metrics as (question, output, reference) -> float evaluators: native and ragas through one adapter."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.messages import AIMessage

from autorag_hp.evaluation import evaluator, get_metric
from autorag_hp.evaluation.metrics import Metric, UnknownMetricError
from autorag_hp.types import Answer, Context, QAItem

Q = "How do I delete a name?"
REF = "Use the del statement to delete a name."
OUT = "The del statement deletes a name."


def test_token_f1_is_the_metric_on_the_same_answer():
    f1 = evaluator("token_f1")
    expected = get_metric("token_f1")(Answer(OUT), QAItem(Q, REF))
    assert f1(Q, OUT, REF) == expected and 0 < expected < 1
    assert f1.__name__ == "token_f1" and f1.metric.name == "token_f1"
    # what LangChain chains return: a chat message, a mapping with an answer, a dict input
    assert f1({"question": Q}, AIMessage(content=OUT), REF) == expected
    assert f1(Q, {"answer": OUT, "context": []}, {"answer": REF}) == expected
    assert f1(Q, REF, REF) == 1.0


def test_retrieval_metrics_read_documents_from_the_output():
    docs = [Document(page_content="Unrelated.", metadata={"source": "faq/library.rst"}),
            Document(page_content="Use del.", metadata={"source": "faq/general.rst#3"})]
    out = {"answer": OUT, "source_documents": docs}
    ref = {"answer": REF, "sources": ["faq/general.rst"]}
    assert evaluator("mrr")(Q, out, ref) == 0.5
    assert evaluator("source_recall@1")(Q, out, ref) == 0.0
    assert evaluator("source_hit@2")(Q, out, ref) == 1.0
    assert evaluator("mrr")(Q, out, QAItem(Q, REF, ("faq/library.rst",))) == 1.0
    assert evaluator("mrr")(Q, Answer(OUT, (Context("faq/general.rst", "x"),)), ref) == 1.0


def test_lower_is_better_metrics_come_as_rewards():
    assert evaluator("answer_tokens")(Q, "one two three", None) == -3.0
    assert evaluator("answer_tokens", maximize=False)(Q, "one two three", None) == 3.0


def test_what_does_not_fit_is_a_clear_error():
    with pytest.raises(UnknownMetricError, match="Did you mean 'token_f1'"):
        evaluator("token_f2")
    with pytest.raises(ValueError, match="needs a reference answer"):
        evaluator("token_f1")(Q, OUT, None)
    with pytest.raises(ValueError, match="needs gold source ids"):
        evaluator("mrr")(Q, OUT, REF)
    with pytest.raises(ValueError, match=r"unknown reference key\(s\) \['anwser'\]"):
        evaluator("token_f1")(Q, OUT, {"anwser": REF})
    with pytest.raises(ValueError, match="none of the answer keys"):
        evaluator("token_f1")(Q, {"reply": OUT}, REF)
    unparsed = Metric("judge", lambda answer, item: None, "a judge whose reply did not parse")
    with pytest.raises(ValueError, match="'judge' gave no score for this answer"):
        evaluator(unparsed)(Q, OUT, REF)
    with pytest.raises(TypeError, match="cannot read answer text"):
        evaluator("token_f1")(Q, 42, REF)


def test_ragas_metrics_come_through_the_same_adapter():
    rouge = evaluator("ragas_rouge_l")
    expected = get_metric("ragas_rouge_l")(Answer(OUT), QAItem(Q, REF))
    assert rouge(Q, AIMessage(content=OUT), REF) == pytest.approx(expected) and 0 < expected < 1
    assert evaluator(get_metric("ragas_string_presence"))(Q, OUT, "del statement") == 1.0
