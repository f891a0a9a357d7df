"""The LangChain wrapper on real LCEL chains: knob discovery, per-call configuration, threads, feedback."""

from __future__ import annotations

import asyncio
import threading

import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import ConfigurableField, RunnableLambda, RunnablePassthrough

from autorag_hp.errors import InvalidConfigError
from autorag_hp.integrations.langchain import RAGRetriever, Tuned, discover_knobs, tune_chain, tune_factory
from autorag_hp.rag import Document, RAGPipeline

DOCS = [
    Document("lists.md", "Lists are mutable sequences; append adds an item at the end."),
    Document("tuples.md", "Tuples are immutable sequences and can be dictionary keys."),
    Document("dicts.md", "Dictionaries map keys to values with constant-time lookup."),
    Document("sets.md", "Sets hold unique items and support union and intersection."),
    Document("strings.md", "Strings are immutable sequences of Unicode code points."),
    Document("bytes.md", "Bytes objects are immutable sequences of small integers."),
]


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    return RAGPipeline(DOCS, generator="extractive", cache_dir=tmp_path_factory.mktemp("lc"), progress=False)


def _prompt():
    concise = ChatPromptTemplate.from_template("concise|{context}|{question}")
    return concise.configurable_alternatives(
        ConfigurableField(id="prompt"), default_key="concise",
        cite=ChatPromptTemplate.from_template("cite|{context}|{question}"),
    )


def _echo(messages) -> str:
    """Stands in for the model: returns the prompt text, so a test can see which settings reached it."""
    return messages.to_string() if hasattr(messages, "to_string") else str(messages)


def _chain(pipe, barrier: threading.Barrier | None = None):
    retriever = RAGRetriever(pipeline=pipe).configurable_fields(
        top_k=ConfigurableField(id="top_k"), embedding=ConfigurableField(id="embedding"))

    def fmt(docs):
        if barrier is not None:
            barrier.wait(timeout=30)  # both threads are inside the chain at the same time
        return f"n={len(docs)}"

    return ({"context": retriever | RunnableLambda(fmt), "question": RunnablePassthrough()}
            | _prompt() | RunnableLambda(_echo) | StrOutputParser())


def test_discovers_fields_and_alternatives_of_a_real_chain(pipe):
    knobs = discover_knobs(_chain(pipe))
    assert set(knobs) == {"top_k", "embedding", "prompt"}
    assert set(knobs["prompt"].choices) == {"concise", "cite"} and knobs["prompt"].default == "concise"
    assert knobs["top_k"].choices is None and knobs["top_k"].default == 3


def test_each_call_runs_its_trials_configuration(pipe):
    tuned = tune_chain(_chain(pipe), {"top_k": [1, 2, 4], "prompt": None}, policy="random", seed=1)
    assert tuned.space.size == 6
    for _ in range(6):
        out = tuned.invoke("are tuples immutable?")
        assert isinstance(out, Tuned)
        assert f"n={out.config['top_k']}" in out.output and out.output.startswith(f"Human: {out.config['prompt']}|")
        tuned.report(out.trial_id, 1.0 if out.config["top_k"] == 2 else 0.0)
    # one question asked six times: a configuration that answered it twice has one sample, not two
    configs = [r.config for r in tuned.tuner.trials()]
    rows = tuned.best(None, rule="mean")
    assert sum(r.count for r in rows) == len(set(configs)) and len(set(configs)) < 6
    assert tuned.tuner.policy._n.sum() == 6  # the bandit still learned from every answer


def test_two_configurations_in_two_threads_never_mix(pipe):
    barrier = threading.Barrier(2)
    tuned = tune_chain(_chain(pipe, barrier), {"top_k": [1, 5], "prompt": ["concise", "cite"]},
                       policy="random", seed=3)
    outs = tuned.batch(["which sequences are immutable?"] * 8, config={"max_concurrency": 2})
    assert len(outs) == 8 and len({(o.config["top_k"], o.config["prompt"]) for o in outs}) > 1
    for o in outs:
        assert f"n={o.config['top_k']}" in o.output and o.output.startswith(f"Human: {o.config['prompt']}|")


def test_evaluator_reports_automatically_and_async_works(pipe):
    def evaluator(question, output, reference):
        return float(reference.lower() in output.lower())

    tuned = tune_chain(_chain(pipe), {"top_k": [1, 3]}, evaluator=evaluator, policy="ucb")
    out = tuned.invoke("are tuples immutable?", reference="tuples")
    assert out.reward in (0.0, 1.0) and tuned.best(1)[0].count == 1
    out2 = asyncio.run(tuned.ainvoke("are tuples immutable?", reference="tuples"))
    assert out2.trial_id != out.trial_id and sum(r.count for r in tuned.best(5)) == 2
    assert tuned.best_values()["top_k"] in (1, 3)


def test_unknown_knobs_values_and_empty_questions_are_clear_errors(pipe):
    chain = _chain(pipe)
    with pytest.raises(InvalidConfigError, match=r"unknown knob\(s\) \['temp'\]"):
        tune_chain(chain, {"temp": [0.0]})
    with pytest.raises(InvalidConfigError, match="not among its alternatives"):
        tune_chain(chain, {"prompt": ["poem"]})
    with pytest.raises(InvalidConfigError, match="no configurable knobs"):
        tune_chain(RunnableLambda(lambda x: x), {"k": [1]})
    tuned = tune_chain(chain, {"top_k": [1, 3]}, storage="sqlite:///:memory:")
    with pytest.raises(ValueError, match="empty"):
        tuned.invoke("   ")
    assert tuned.tuner.trials() == [] and tuned.best() == []


def test_factory_with_non_scalar_values(pipe):
    built = []

    def build(cfg):
        built.append(cfg)
        k = cfg["search_kwargs"]["k"]
        return lambda q: [c.source for c in pipe.retrieve(q, {"top_k": k})]

    tuned = tune_factory(build, {"search_kwargs": [{"k": 1}, {"k": 2}]}, policy="grid")
    outs = [tuned.invoke("are tuples immutable?") for _ in range(2)]
    assert sorted(len(o.output) for o in outs) == [1, 2]
    assert all(isinstance(c["search_kwargs"], dict) for c in built)
    assert all(str(o.config["search_kwargs"]).startswith("#") for o in outs)


@pytest.mark.slow
def test_wraps_a_chain_with_a_real_local_chat_model(pipe):
    import torch

    from autorag_hp.generators import ChatLocalGenerator, default_generator

    torch.set_num_threads(2)
    llm = ChatLocalGenerator(generator=default_generator(threads=2), max_new_tokens=8).configurable_fields(
        temperature=ConfigurableField(id="temperature"))
    retriever = RAGRetriever(pipeline=pipe).configurable_fields(top_k=ConfigurableField(id="top_k"))
    chain = ({"context": retriever | RunnableLambda(lambda ds: "\n".join(d.page_content for d in ds)),
              "question": RunnablePassthrough()} | _prompt() | llm | StrOutputParser())
    assert set(discover_knobs(chain)) == {"temperature", "top_k", "prompt"}
    tuned = tune_chain(chain, {"temperature": [0.0, 0.7], "top_k": [1, 2]}, policy="random", seed=0)
    out = tuned.invoke("Are tuples immutable?")
    assert isinstance(out.output, str) and out.output.strip()
