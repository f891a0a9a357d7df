"""The LangChain wrapper on real LCEL chains: a real Runnable with the chain's own outputs, knob discovery,
per-call configuration, trial ids in run metadata, rewards from references, callbacks and late reports."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import ConfigurableField, RunnableGenerator, RunnableLambda, RunnablePassthrough

from autorag_hp.errors import InvalidConfigError
from autorag_hp.evaluation import evaluator
from autorag_hp.integrations.langchain import (
    TRIAL_ID_KEY,
    RAGRetriever,
    RewardCallback,
    arm_labels,
    discover_knobs,
    tune_chain,
    tune_factory,
)
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


def _words(messages):
    """Stands in for the model: streams the prompt text back word by word as message chunks, so a test can
    see which settings reached it (a real Runnable; sync and async)."""
    for messages_ in messages:
        for w in messages_.to_string().split(" "):
            yield AIMessageChunk(content=w + " ")


async def _awords(messages):
    async for messages_ in messages:
        for w in messages_.to_string().split(" "):
            yield AIMessageChunk(content=w + " ")


def _chain(pipe, barrier: threading.Barrier | None = None, parse: bool = True):
    retriever = RAGRetriever(pipeline=pipe).configurable_fields(
        top_k=ConfigurableField(id="top_k"), embedding=ConfigurableField(id="embedding"))

    def fmt(docs):
        if barrier is not None:
            barrier.wait(timeout=30)  # both threads are inside the chain at the same time
        return f"n={len(docs)}"

    chain = ({"context": retriever | RunnableLambda(fmt), "question": RunnablePassthrough()}
             | _prompt() | RunnableGenerator(_words, _awords))
    return chain | StrOutputParser() if parse else chain


def _settings(text: str) -> tuple[int, str]:
    """(top_k, prompt) as the chain saw them, read back from the echoed prompt."""
    body = text.split("Human: ", 1)[1]
    prompt, ctx = body.split("|")[:2]
    return int(ctx.removeprefix("n=")), prompt


class MetadataRecorder(BaseCallbackHandler):
    """A plain callback handler, as a tracer would be: records each chain run's name and metadata."""

    def __init__(self):
        self.starts: list[tuple[str, dict]] = []

    def on_chain_start(self, serialized, inputs, *, run_id, metadata=None, **kwargs):
        self.starts.append((kwargs.get("name"), dict(metadata or {})))


def test_discovers_fields_and_alternatives_of_a_real_chain(pipe):
    knobs = discover_knobs(_chain(pipe))
    assert set(knobs) == {"top_k", "embedding", "prompt"}
    assert set(knobs["prompt"].choices) == {"concise", "cite"} and knobs["prompt"].default == "concise"
    assert knobs["top_k"].choices is None and knobs["top_k"].default == 3


def test_returns_the_chains_own_output_and_composes_with_a_parser(pipe):
    tuned = tune_chain(_chain(pipe, parse=False), {"top_k": [1, 2], "prompt": None}, policy="random", seed=0)
    msg = tuned.invoke("are tuples immutable?")
    assert isinstance(msg, AIMessage) and msg.content.startswith("Human: ")
    text = (tuned | StrOutputParser()).invoke("are tuples immutable?")
    assert isinstance(text, str) and text.startswith("Human: ")
    chunks = list((tuned | StrOutputParser()).stream("are tuples immutable?"))
    assert len(chunks) > 3 and all(isinstance(c, str) for c in chunks)  # the chain's chunks, not one at the end
    raw = list(tuned.stream("are tuples immutable?"))
    assert len(raw) > 3 and all(isinstance(c, AIMessageChunk) for c in raw)
    own = type(_chain(pipe, parse=False).invoke("are lists mutable?"))
    assert [type(o) for o in tuned.batch(["are lists mutable?"] * 3)] == [own] * 3 and issubclass(own, AIMessage)
    assert len(tuned.tuner.trials()) == 7  # one trial per call


def test_each_call_runs_its_trials_configuration(pipe):
    tuned = tune_chain(_chain(pipe), {"top_k": [1, 2, 4], "prompt": None}, policy="random", seed=1)
    assert tuned.space.size == 6
    for _ in range(6):
        with tuned.collect_trials() as trials:
            out = tuned.invoke("are tuples immutable?")
        run = trials.runs[0]
        assert trials.trial_id == tuned.last_trial_id == run.trial_id
        assert _settings(out) == (run.config["top_k"], run.config["prompt"])
        tuned.report(run.trial_id, 1.0 if run.config["top_k"] == 2 else 0.0)
    # one question asked six times: a configuration that answered it twice has one sample, not two
    configs = [r.config for r in tuned.tuner.trials()]
    rows = tuned.best(None, rule="mean")
    assert sum(r.count for r in rows) == len(set(configs)) and len(set(configs)) < 6
    assert tuned.tuner.n_decisions == 6  # the bandit still learned from every answer


def test_trial_id_reaches_every_callback_handler_through_run_metadata(pipe):
    tuned = tune_chain(_chain(pipe), {"top_k": [1, 3]}, policy="ucb")
    recorder = MetadataRecorder()
    (tuned | StrOutputParser()).invoke("are tuples immutable?", config={"callbacks": [recorder]})
    names = [name for name, _ in recorder.starts]
    tagged = [(name, md) for name, md in recorder.starts if TRIAL_ID_KEY in md]
    assert names[0] == "RunnableSequence" and TRIAL_ID_KEY not in recorder.starts[0][1]  # the outer chain
    assert tagged[0][0] == "TunedRunnable" and len(tagged) >= 5  # the tuned run and every run inside it
    assert {md[TRIAL_ID_KEY] for _, md in tagged} == {tuned.last_trial_id}
    assert tagged[0][1]["autorag_hp_config"] == json.loads(tuned.tuner.trial(tuned.last_trial_id).config)
    assert TRIAL_ID_KEY not in recorder.starts[-1][1]  # the parser after the tuned chain is not inside it


def test_two_configurations_in_two_threads_never_mix(pipe):
    barrier = threading.Barrier(2)
    tuned = tune_chain(_chain(pipe, barrier), {"top_k": [1, 5], "prompt": ["concise", "cite"]},
                       policy="random", seed=3)
    with tuned.collect_trials() as trials:
        outs = tuned.batch(["which sequences are immutable?"] * 8, config={"max_concurrency": 2})
    assert len(outs) == 8 and len(trials.runs) == 8
    assert Counter(map(_settings, outs)) == Counter((r.config["top_k"], r.config["prompt"]) for r in trials.runs)
    assert len(set(map(_settings, outs))) > 1


def test_batch_takes_one_reference_per_input(pipe, tmp_path):
    tuned = tune_chain(_chain(pipe), {"top_k": [1, 3]}, policy="ucb", evaluator=evaluator("answer_contains_reference"),
                       storage=f"sqlite:///{tmp_path / 'lc.db'}")
    questions = ["are tuples immutable?", "are lists mutable?", "what do sets hold?"]
    with tuned.collect_trials() as trials:
        tuned.batch(questions, references=["tuples immutable", "lists mutable", "sets hold"])
    # each reference is found only in its own question's echoed answer: one shared reference would score 0
    assert sorted(r.reward for r in trials.runs) == [1.0, 1.0, 1.0]
    assert [t.reward for t in tuned.tuner.trials()] == [1.0, 1.0, 1.0]
    with tuned.collect_trials() as trials:
        asyncio.run(tuned.abatch(questions[:2], references=["tuples immutable", "nothing of the kind"]))
    assert sorted(r.reward for r in trials.runs) == [0.0, 1.0]
    with pytest.raises(ValueError, match="one reference per input: 3 inputs, got 2"):
        tuned.batch(questions, references=["a", "b"])
    with pytest.raises(TypeError, match="references="):
        tuned.batch(questions, reference="tuples")
    assert len(tuned.tuner.trials()) == 5  # the rejected batches suggested nothing


def test_evaluator_reports_from_invoke_stream_and_async(pipe):
    tuned = tune_chain(_chain(pipe), {"top_k": [1, 3]}, evaluator=evaluator("answer_contains_reference"),
                       policy="ucb")
    assert (tuned | StrOutputParser()).invoke("are tuples immutable?", reference="tuples")
    assert tuned.tuner.trial(tuned.last_trial_id).reward == 1.0
    "".join(tuned.stream("are tuples immutable?", reference="lists"))
    assert tuned.tuner.trial(tuned.last_trial_id).reward == 0.0

    async def calls():
        with tuned.collect_trials() as trials:
            await tuned.ainvoke("are tuples immutable?", reference="tuples")
            chunks = [c async for c in tuned.astream("are tuples immutable?", reference="tuples")]
        return trials, chunks

    trials, chunks = asyncio.run(calls())
    assert len(chunks) > 3 and [r.reward for r in trials.runs] == [1.0, 1.0]
    assert sum(r.count for r in tuned.best(5)) == 2  # one question: one sample per configuration
    assert tuned.best_values()["top_k"] in (1, 3)


def test_reward_callback_reports_when_the_run_ends_and_report_takes_late_feedback(pipe):
    tuned = tune_chain(_chain(pipe), {"top_k": [1, 3]}, policy="ucb")
    f1 = evaluator("token_f1")
    handler = RewardCallback(tuned, f1, references={"are tuples immutable?": "tuples are immutable"})
    app = tuned | RunnableLambda(str.upper)  # a bigger chain; the handler scores the tuned chain's own output
    q = "are tuples immutable?"
    app.invoke(q, config={"callbacks": [handler]})
    tid = tuned.last_trial_id
    answer = tuned.tuner.trial(tid)
    assert answer.state == "reported" and answer.reward == pytest.approx(
        f1(q, _settings_text(pipe, tuned, tid, q), "tuples are immutable"))
    "".join(app.stream(q, config={"callbacks": [handler]}))  # streamed: reported from the merged output
    assert tuned.tuner.trial(tuned.last_trial_id).reward is not None
    asyncio.run(app.ainvoke(q, config={"callbacks": [handler]}))
    assert tuned.tuner.trial(tuned.last_trial_id).reward is not None
    app.invoke("what do sets hold?", config={"callbacks": [handler]})  # no reference for it: left for feedback
    late = tuned.last_trial_id
    assert tuned.tuner.trial(late).state == "pending"
    tuned.report(late, 1.0)  # the user's thumbs-up, later
    assert tuned.tuner.trial(late).reward == 1.0
    broken = RewardCallback(tuned, lambda q, out, ref: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        app.invoke(q, config={"callbacks": [broken]})
    with pytest.raises(TypeError, match="report"):
        RewardCallback(object(), f1)


def _settings_text(pipe, tuned, trial_id, question):
    """What the chain answers under a trial's configuration (deterministic: the echo chain)."""
    cfg = json.loads(tuned.tuner.trial(trial_id).config)
    return _chain(pipe).invoke(question, {"configurable": tuned.values_of(cfg)})


def test_knob_values_print_readably():
    arms = arm_labels([{"k": 1}, {"k": 5, "fetch_k": 20}, [1, 2], 0.7, ChatPromptTemplate.from_template("{q}")])
    assert list(arms)[:4] == ["k=1", "k=5, fetch_k=20", "[1, 2]", 0.7]
    assert list(arms)[4] == "ChatPromptTemplate"  # a long repr gives way to the type
    assert list(arm_labels([{"k": 1}, {"k": 1.0, "x": None}])) == ["k=1", "k=1.0, x=None"]
    with pytest.raises(InvalidConfigError, match="listed twice"):
        arm_labels([{"k": 1}, {"k": 1}])


def test_factory_with_non_scalar_values(pipe):
    built = []

    def build(cfg):
        built.append(cfg)
        k = cfg["search_kwargs"]["k"]
        return lambda q: [c.source for c in pipe.retrieve(q, {"top_k": k})]

    tuned = tune_factory(build, {"search_kwargs": [{"k": 1}, {"k": 2}]}, policy="grid")
    outs = [tuned.invoke("are tuples immutable?") for _ in range(2)]
    assert sorted(len(o) for o in outs) == [1, 2]
    assert all(isinstance(c["search_kwargs"], dict) for c in built)
    assert sorted(t.config for t in tuned.tuner.trials()) == ['{"search_kwargs":"k=1"}', '{"search_kwargs":"k=2"}']


def test_unknown_knobs_values_missing_evaluators_and_empty_questions_are_clear_errors(pipe):
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
    with pytest.raises(InvalidConfigError, match="no evaluator"):
        tuned.invoke("are tuples immutable?", reference="tuples")
    assert tuned.tuner.trials() == [] and tuned.best() == [] and tuned.last_trial_id is None


@pytest.mark.slow
def test_wraps_a_chain_with_a_real_local_chat_model(pipe):
    import torch

    from autorag_hp.generators import ChatLocalGenerator, default_generator

    torch.set_num_threads(2)
    llm = ChatLocalGenerator(generator=default_generator(threads=2), max_new_tokens=8).configurable_fields(
        temperature=ConfigurableField(id="temperature"))
    retriever = RAGRetriever(pipeline=pipe).configurable_fields(top_k=ConfigurableField(id="top_k"))
    chain = ({"context": retriever | RunnableLambda(lambda ds: "\n".join(d.page_content for d in ds)),
              "question": RunnablePassthrough()} | _prompt() | llm)
    assert set(discover_knobs(chain)) == {"temperature", "top_k", "prompt"}
    tuned = tune_chain(chain, {"temperature": [0.0, 0.7], "top_k": [1, 2]}, policy="random", seed=0)
    out = (tuned | StrOutputParser()).invoke("Are tuples immutable?")
    assert isinstance(out, str) and out.strip()
