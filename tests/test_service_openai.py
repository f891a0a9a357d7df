"""``POST /v1/chat/completions`` with the official ``openai`` client and LangChain's ``ChatOpenAI`` against a real
uvicorn server on a loopback port (the real app, the extractive FAQ pipeline, real SQLite): the answer, its
trial id as ``id`` and header, feedback on it, streaming, and OpenAI-shaped refusals that store nothing."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("openai")

import openai  # noqa: E402  (the [dev] extra's official client)
from service_support import ASK, FB, FIXED, KEYS, SPACE, Q, snapshot  # shared keys, space and helpers

ASK_KEY = ASK["Authorization"].split()[1]


@contextlib.contextmanager
def live_server(pipeline, tmp_path):
    """The app on uvicorn in a thread; yields (base URL, controller)."""
    import uvicorn

    from autorag_hp.service.app import create_app
    from autorag_hp.service.auth import KeyRing
    from autorag_hp.service.controller import ServiceSettings
    from autorag_hp.service.process import free_port

    settings = ServiceSettings(storage=f"sqlite:///{tmp_path / 'oa.db'}", generator="extractive", space=SPACE,
                               config=FIXED)
    app = create_app(settings, KeyRing.from_mapping(KEYS), pipeline=pipeline)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app.state.controller
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def served(pipeline, tmp_path):
    with live_server(pipeline, tmp_path) as (url, ctl):
        yield url, ctl


def client(url: str, key: str = ASK_KEY):
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=60)


def test_openai_client_gets_the_answer_and_its_trial_takes_feedback(served, pipeline):
    import httpx

    url, ctl = served
    raw = client(url).chat.completions.with_raw_response.create(
        model="faq-bot", temperature=0.2, max_tokens=50, user="u-1",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello?"},
                  {"role": "assistant", "content": "Hi."}, {"role": "user", "content": Q}])
    done = raw.parse()
    assert raw.headers["X-AutoRAG-Trial"] == done.id and done.model == "faq-bot"
    assert done.object == "chat.completion" and len(done.choices) == 1
    choice = done.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    ext = done.model_extra["autorag_hp"]
    assert ext["trial_id"] == done.id and set(ext["config"]) == set(SPACE) and ext["sources"]
    # the last user message was the question, answered by the tuned configuration
    assert choice.message.content == pipeline.run(Q, {**FIXED, **ext["config"]}).text
    tid = done.id.split(".")[0]
    assert ctl.tuner.trial(tid).state == "pending" and ctl.counters["asks"] == 1
    r = httpx.post(url + "/v1/feedback", json={"trial_id": done.id, "thumbs": "up"}, headers=FB)
    assert r.status_code == 200, r.text
    rec = ctl.tuner.trial(tid)
    assert rec.state == "reported" and rec.reward == 1.0
    models = client(url).models.list()
    assert [m.id for m in models.data] == ["autorag-hp"]


def test_streaming_sends_the_answer_in_chunks_then_done(served, pipeline):
    import httpx

    url, ctl = served
    stream = client(url).chat.completions.create(model="faq-bot", stream=True,
                                                 messages=[{"role": "user", "content": Q}])
    chunks = list(stream)
    assert len({c.id for c in chunks}) == 1 and all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    config = chunks[0].model_extra["autorag_hp"]["config"]
    assert len(chunks) > 4 and text == pipeline.run(Q, {**FIXED, **config}).text
    assert ctl.tuner.trial(chunks[0].id.split(".")[0]).state == "pending"
    # the wire format: SSE data lines ending with [DONE], the trial in a header
    with httpx.stream("POST", url + "/v1/chat/completions", headers=ASK, timeout=60,
                      json={"model": "m", "stream": True, "messages": [{"role": "user", "content": Q}]}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [ln for ln in r.iter_lines() if ln]
        trial = r.headers["X-AutoRAG-Trial"]
    assert all(ln.startswith("data: ") for ln in lines) and lines[-1] == "data: [DONE]"
    assert f'"id":"{trial}"' in lines[0]
    assert httpx.post(url + "/v1/feedback", json={"trial_id": trial, "reward": 0.5}, headers=FB).status_code == 200


def test_refusals_are_openai_shaped_and_store_nothing(served):
    url, ctl = served
    before = snapshot(ctl)
    c = client(url)
    cases = [
        (dict(messages=[{"role": "system", "content": "You are helpful."}]), "no_user_message", "messages"),
        (dict(messages=[{"role": "user", "content": Q}], extra_body={"temperatur": 0.1}), "invalid_request", "temperatur"),
        (dict(messages=[{"role": "user", "content": Q}], n=2), "invalid_request", "n"),
        (dict(messages=[{"role": "user", "content": Q}], temperature="hot"), "invalid_request", "temperature"),
        (dict(messages=[{"role": "user", "content": "   "}]), None, None),
    ]
    for kwargs, code, param in cases:
        with pytest.raises(openai.UnprocessableEntityError) as info:
            c.chat.completions.create(model="m", **kwargs)
        err = info.value.body
        assert err["type"] == "invalid_request_error" and err["message"], err
        if code:
            assert (err["code"], err["param"]) == (code, param), err
    with pytest.raises(openai.AuthenticationError) as info:
        client(url, "not-a-key-0123456789").chat.completions.create(model="m", messages=[{"role": "user", "content": Q}])
    assert info.value.body["code"] == "unauthorized"
    with pytest.raises(openai.PermissionDeniedError):  # a feedback key cannot ask
        client(url, FB["Authorization"].split()[1]).chat.completions.create(
            model="m", messages=[{"role": "user", "content": Q}])
    assert snapshot(ctl) == before and ctl.counters["asks"] == 0


def test_langchain_chat_openai_invokes_and_streams(served, pipeline):
    lc = pytest.importorskip("langchain_openai")
    url, ctl = served
    chat = lc.ChatOpenAI(base_url=url + "/v1", api_key=ASK_KEY, model="faq-bot", max_retries=0)
    msg = chat.invoke(Q)
    assert msg.content and msg.response_metadata["finish_reason"] == "stop"
    (trial,) = ctl.tuner.trials()
    assert trial.state == "pending" and msg.response_metadata["id"].split(".")[0] == trial.trial_id  # for feedback
    streamed = list(chat.stream(Q))
    assert len(streamed) > 4 and "".join(c.content for c in streamed)
    assert len(ctl.tuner.trials()) == 2
