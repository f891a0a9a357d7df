"""The pipeline with a real local generator (SmolLM2-135M-Instruct, offline) and through LangChain chat models."""

from __future__ import annotations

import pytest

from autorag_hp.rag import Document, RAGPipeline
from autorag_hp.rag.generation import ChatModelGenerator

DOCS = [
    Document("tuples.md", "Tuples are immutable sequences. Once created, a tuple cannot be changed."),
    Document("lists.md", "Lists are mutable sequences. You can append items to a list."),
    Document("zh.md", "元组是不可变的序列。元组创建以后就不能修改。"),
]


@pytest.fixture(scope="module")
def generator():
    import torch

    torch.set_num_threads(2)
    from autorag_hp.generators import default_generator

    return default_generator(threads=2)


@pytest.fixture(scope="module")
def pipe(generator, tmp_path_factory):
    return RAGPipeline(DOCS, generator=generator, cache_dir=tmp_path_factory.mktemp("gen"), progress=False,
                       defaults={"embedding": "bm25", "top_k": 1, "max_new_tokens": 6})


def test_local_generator_answers_offline(pipe):
    a = pipe.run("Can a tuple be changed?")
    assert a.text.strip() and a.llm_calls == 1
    assert a.prompt_tokens > 20 and 0 < a.completion_tokens <= 6
    assert a.sources == ["tuples.md"] and a.meta["generation_s"] > 0


@pytest.mark.slow
def test_stages_compose_and_temperature_zero_is_deterministic(pipe):
    q = "Can you append to a list?"
    ctx = pipe.retrieve(q)
    msgs = pipe.render_prompt(q, ctx, {"prompt": "cite"})
    g1, g2 = pipe.generate(msgs, {"temperature": 0.0}), pipe.generate(msgs, {"temperature": 0.0})
    assert g1.text == g2.text and g1.prompt_tokens == g2.prompt_tokens
    assert pipe.run("元组可以修改吗？").text.strip()


@pytest.mark.slow
def test_a_langchain_chat_model_as_the_generator(generator, tmp_path):
    from autorag_hp.generators import ChatLocalGenerator

    chat = ChatLocalGenerator(generator=generator)
    gen = ChatModelGenerator(chat)
    assert gen._temp == "temperature" and gen._max == "max_new_tokens"
    pipe = RAGPipeline(DOCS, generator=chat, cache_dir=tmp_path, progress=False,
                       defaults={"embedding": "bm25", "top_k": 1, "max_new_tokens": 8})
    a = pipe.run("Can a tuple be changed?", {"temperature": 0.7})
    assert a.text.strip() and 0 < a.completion_tokens <= 8 and a.prompt_tokens > 20
    assert chat.temperature == 0.0  # the shared model was copied, not mutated
