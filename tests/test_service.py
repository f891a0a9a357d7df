"""The online tuning service in-process (real app, real pipeline in extractive mode, real SQLite): endpoints,
keys, validation, feedback windows, and that a rejected request changes nothing stored."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi")

from service_support import (  # shared keys, client and helpers
    ADMIN,
    ASK,
    FB,
    FB_BOT,
    KEYS,
    SCORE,
    SPACE,
    Clock,
    Q,
    make_client,
    snapshot,
)


def test_ask_then_feedback_is_stored_once(pipeline, tmp_path):
    client, ctl = make_client(pipeline, tmp_path)
    with client:
        r = client.post("/v1/ask", json={"question": Q}, headers=ASK)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["answer"] and body["sources"] and set(body["config"]) == set(SPACE)
        assert body["reward"] is None and body["feedback_until"] is not None
        tid = body["trial_id"]
        assert ctl.tuner.trial(tid.split(".")[0]).state == "pending"
        r = client.post("/v1/feedback", json={"trial_id": tid, "thumbs": "up"}, headers=FB)
        assert r.status_code == 200, r.text
        assert r.json() == {"trial_id": tid, "reward": 1.0, "recorded": True}
        rec = ctl.tuner.trial(tid.split(".")[0])
        assert rec.state == "reported" and rec.reward == 1.0
        # stars map to (stars - 3) / 2
        tid2 = client.post("/v1/ask", json={"question": Q + " (again)"}, headers=ASK).json()["trial_id"]
        assert client.post("/v1/feedback", json={"trial_id": tid2, "rating": 4}, headers=FB).json()["reward"] == 0.5
        stats = ctl.tuner.storage.stats(ctl.study)
        assert sum(s.count for s in stats.values()) == 2
        # reads
        best = client.get("/v1/best?k=3", headers=FB).json()["best"]
        assert sum(b["count"] for b in best) == 2
        assert best[0]["mean"] == (0.75 if len(best) == 1 else 1.0)  # one config twice, or two configs
        arms = client.get("/v1/arms", headers=ADMIN).json()
        assert set(arms["arms"]) == set(SPACE)
        assert sum(v["count"] for v in arms["arms"]["top_k"]["values"]) == 2
        trials = client.get("/v1/trials?state=reported", headers=FB).json()["trials"]
        assert {t["trial_id"] for t in trials} == {tid.split(".")[0], tid2.split(".")[0]}


def test_reference_is_scored_by_the_service(pipeline, tmp_path):
    client, ctl = make_client(pipeline, tmp_path)
    with client:
        ref = pipeline.questions()[0]
        r = client.post("/v1/ask", json={"question": ref.question, "reference": ref.answer}, headers=SCORE)
        assert r.status_code == 200, r.text
        body = r.json()
        assert isinstance(body["reward"], float) and -1.0 <= body["reward"] <= 1.0
        assert body["feedback_until"] is None
        rec = ctl.tuner.trial(body["trial_id"].split(".")[0])
        assert rec.state == "reported" and rec.reward == pytest.approx(body["reward"])
        # the trial already has its reward: feedback is refused, nothing changes
        before = snapshot(ctl)
        r = client.post("/v1/feedback", json={"trial_id": body["trial_id"], "reward": 1.0}, headers=FB)
        assert r.status_code == 409 and r.json()["error"]["code"] == "already_reported"
        assert snapshot(ctl) == before


def test_rejected_requests_give_clear_4xx_and_change_nothing(pipeline, tmp_path):
    client, ctl = make_client(pipeline, tmp_path)
    with client:
        tid = client.post("/v1/ask", json={"question": Q}, headers=ASK).json()["trial_id"]
        bogus = "0123456789abcdef." + "0" * 20
        raw = {"content-type": "application/json"}
        cases = [
            # (method, path, kwargs, status, error code)
            ("post", "/v1/feedback", {"content": b'{"trial_id": "x", ', "headers": {**FB, **raw}}, 400, "malformed_json"),
            ("post", "/v1/feedback", {"content": json.dumps({"trial_id": tid}).replace("}", ', "reward": NaN}').encode(),
                                      "headers": {**FB, **raw}}, 422, "invalid_request"),
            ("post", "/v1/feedback", {"content": f'{{"trial_id": "{tid}", "reward": Infinity}}'.encode(),
                                      "headers": {**FB, **raw}}, 422, "invalid_request"),
            ("post", "/v1/feedback", {"json": {"trial_id": tid, "reward": 7.5}, "headers": FB}, 422, "reward_out_of_range"),
            ("post", "/v1/feedback", {"json": {"trial_id": tid, "reward": "high"}, "headers": FB}, 422, "invalid_request"),
            ("post", "/v1/feedback", {"json": {"trial_id": tid, "rating": 9}, "headers": FB}, 422, "invalid_request"),
            ("post", "/v1/feedback", {"json": {"trial_id": tid}, "headers": FB}, 422, "one_feedback_field"),
            ("post", "/v1/feedback", {"json": {"trial_id": tid, "reward": 1, "thumbs": "up"}, "headers": FB}, 422,
             "one_feedback_field"),
            ("post", "/v1/feedback", {"json": {"trial_id": tid, "reward": 1, "extra": 1}, "headers": FB}, 422,
             "invalid_request"),
            ("post", "/v1/feedback", {"json": {"trial_id": "no-dot", "reward": 1}, "headers": FB}, 422, "malformed_trial_id"),
            ("post", "/v1/feedback", {"json": {"trial_id": bogus, "reward": 1}, "headers": FB}, 404, "unknown_trial"),
            ("post", "/v1/feedback", {"json": {"trial_id": bogus, "reward": 1}, "headers": ADMIN}, 404, "unknown_trial"),
            # another client's trial, or an altered signature: the same answer as an unknown trial
            ("post", "/v1/feedback", {"json": {"trial_id": tid, "reward": 1}, "headers": FB_BOT}, 404, "unknown_trial"),
            ("post", "/v1/feedback", {"json": {"trial_id": tid[:-1] + ("1" if tid[-1] != "1" else "2"), "reward": 1},
                                      "headers": FB}, 404, "unknown_trial"),
            ("post", "/v1/feedback", {"json": {"trial_id": tid, "reward": 1}, "headers": ASK}, 403, "forbidden"),
            ("post", "/v1/feedback", {"json": {"trial_id": tid, "reward": 1},
                                      "headers": {"Authorization": "Bearer wrong-key-0123456789"}}, 401, "unauthorized"),
            ("post", "/v1/feedback", {"json": {"trial_id": tid, "reward": 1}}, 401, "unauthorized"),
            ("post", "/v1/ask", {"json": {"question": Q}, "headers": FB}, 403, "forbidden"),
            ("post", "/v1/ask", {"json": {"question": "x" * 2001}, "headers": ASK}, 422, "invalid_request"),
            ("post", "/v1/ask", {"json": {"question": "   "}, "headers": ASK}, 422, "empty_question"),
            ("post", "/v1/ask", {"json": {"question": 42}, "headers": ASK}, 422, "invalid_request"),
            ("post", "/v1/ask", {"json": {"question": Q, "reference": "r" * 9000}, "headers": SCORE}, 422, "invalid_request"),
            ("post", "/v1/ask", {"json": {"question": Q, "reference": "r"}, "headers": ASK}, 403, "forbidden"),
            ("post", "/v1/ask", {"content": b"{" + b" " * 20000 + b"}", "headers": {**ASK, **raw}}, 413, "body_too_large"),
            ("get", "/v1/best", {"headers": ASK}, 403, "forbidden"),
            ("get", "/v1/trials", {}, 401, "unauthorized"),
            ("get", "/v1/trials?state=nonsense", {"headers": FB}, 422, "invalid_request"),
        ]
        before = snapshot(ctl)
        for method, path, kwargs, status, code in cases:
            r = getattr(client, method)(path, **kwargs)
            assert r.status_code == status, (path, kwargs, r.text)
            assert r.json()["error"]["code"] == code, (path, kwargs, r.text)
            assert r.json()["error"]["message"], r.text
            assert snapshot(ctl) == before, (path, kwargs)
        def chunked():  # no Content-Length: refused while streaming
            yield b'{"question": "'
            for _ in range(40):
                yield b"x" * 1000
            yield b'"}'

        r = client.post("/v1/ask", content=chunked(), headers={**ASK, **raw})
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
        assert snapshot(ctl) == before
        # the legitimate feedback still works after all that
        assert client.post("/v1/feedback", json={"trial_id": tid, "thumbs": "down"}, headers=FB).status_code == 200
        # the admin may report any client's trial
        tid2 = client.post("/v1/ask", json={"question": Q}, headers={"Authorization": "Bearer ask-bot-0123456789"}).json()
        assert client.post("/v1/feedback", json={"trial_id": tid2["trial_id"], "reward": 0.2}, headers=ADMIN).status_code == 200


def test_feedback_window_expires_trials_without_blocking(pipeline, tmp_path):
    clock = Clock()
    client, ctl = make_client(pipeline, tmp_path, clock=clock, feedback_window=60.0)
    with client:
        late = client.post("/v1/ask", json={"question": Q}, headers=ASK).json()["trial_id"]
        clock.t += 61.0
        r = client.post("/v1/feedback", json={"trial_id": late, "thumbs": "up"}, headers=FB)
        assert r.status_code == 410 and r.json()["error"]["code"] == "trial_expired"
        # the next ask expires it in the log and proceeds; the expired trial counts for nothing
        nxt = client.post("/v1/ask", json={"question": Q}, headers=ASK).json()["trial_id"]
        assert ctl.tuner.trial(late.split(".")[0]).state == "expired"
        assert client.post("/v1/feedback", json={"trial_id": nxt, "thumbs": "up"}, headers=FB).status_code == 200
        assert sum(s.count for s in ctl.tuner.storage.stats(ctl.study).values()) == 1


def test_metrics_openapi_health_and_dashboard_page(pipeline, tmp_path):
    client, ctl = make_client(pipeline, tmp_path)
    with client:
        client.post("/v1/ask", json={"question": Q}, headers=ASK)
        client.post("/v1/ask", json={"question": Q}, headers=FB)
        text = client.get("/metrics").text
        assert 'autorag_http_requests_total{method="POST",path="/v1/ask",status="200"} 1.0' in text
        assert 'autorag_http_requests_total{method="POST",path="/v1/ask",status="403"} 1.0' in text
        assert "# TYPE autorag_pipeline_seconds histogram" in text and "autorag_decisions 1.0" in text
        paths = client.get("/openapi.json").json()["paths"]
        assert {"/v1/ask", "/v1/feedback", "/v1/best", "/v1/arms", "/v1/trials", "/healthz", "/metrics"} <= set(paths)
        h = client.get("/healthz").json()
        assert h["status"] == "ok" and h["study"] == ctl.study
        page = client.get("/")
        assert page.status_code == 200 and "/v1/dashboard" in page.text
        d = client.get("/v1/dashboard", headers=FB).json()
        assert d["decisions"] == 1 and "reward_over_time" in d and "arms" in d and "explore_share" in d


def test_keys_spec_is_validated_and_tickets_bind_the_client():
    from autorag_hp.service.auth import KeyRing, TicketError

    for bad in ({}, {"clients": {"web": {"ask": "short"}}}, {"admin": ["x" * 16, "x" * 16]}, {"users": {}},
                {"clients": {"web": {"ask": "a" * 16, "write": "b" * 16}}}):
        with pytest.raises(ValueError):
            KeyRing.from_mapping(bad)
    ring = KeyRing.from_mapping(KEYS)
    assert ring.lookup("ask-web-0123456789").role == "ask" and ring.lookup("nope") is None and ring.lookup(None) is None
    t = ring.ticket("study", "abcdef", "web")
    assert ring.parse_ticket("study", t, "web") == "abcdef" and ring.parse_ticket("study", t, None) == "abcdef"
    for client, study in (("bot", "study"), ("web", "other-study")):
        with pytest.raises(TicketError):
            ring.parse_ticket(study, t, client)
    # replicas loading the same spec verify each other's tickets
    assert KeyRing.from_mapping(KEYS).parse_ticket("study", t, "web") == "abcdef"
    spec = KeyRing.generate(("a", "b"))
    assert KeyRing.from_mapping(spec).lookup(spec["clients"]["b"]["feedback"]).client == "b"


def test_serve_command_parses_its_options(tmp_path):
    import argparse

    from autorag_hp.commands.serve import add_arguments, keys_from_args, settings_from_args

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--storage", "sqlite:///x.db", "--set", "embedding=bm25", "--set", "top_k=3",
                         "--space", '{"chunk_size": [256, 512]}', "--explore", "0.1", "--discount", "0.99",
                         "--fallback", '{"chunk_size": 512}', "--on-change", "reset", "--reward-range=-2,2",
                         "--generate-keys", str(tmp_path / "k.json")])
    s = settings_from_args(args)
    assert s.config == {"embedding": "bm25", "top_k": 3} and s.space == {"chunk_size": [256, 512]}
    assert (s.explore, s.discount, s.fallback, s.on_change, s.reward_range) == (0.1, 0.99, {"chunk_size": 512}, "reset", (-2.0, 2.0))
    ring = keys_from_args(args)
    spec = json.loads((tmp_path / "k.json").read_text())
    assert ring.lookup(spec["admin"][0]).role == "admin"
    assert keys_from_args(args).lookup(spec["admin"][0]) is not None  # an existing file is reused, not replaced
    assert json.loads((tmp_path / "k.json").read_text()) == spec


def test_a_pinned_key_leaves_the_tuned_space_and_rewards_come_by_name(pipeline, tmp_path):
    import argparse

    from autorag_hp.commands.serve import add_arguments, settings_from_args

    # --set pins a key the spec's space tunes: it leaves the space (the same rule as `autorag-hp tune --set`)
    _, ctl = make_client(pipeline, tmp_path, space=None, config={"embedding": "bm25", "top_k": 3})
    assert "embedding" not in ctl.space.names and "top_k" not in ctl.space.names
    # and the extractive generator ignores prompt and temperature: they leave it too (issue 16 §5)
    assert ctl.space.names == ["chunk_size"] and ctl.fixed == {"embedding": "bm25", "top_k": 3}
    p = argparse.ArgumentParser()
    add_arguments(p)
    s = settings_from_args(p.parse_args(["--reward", "python_docs_w0.5"]))
    assert s.reward == "python_docs_w0.5" and s.pipeline == "python_docs_faq"  # the FAQ slice by default, as tune
    (tmp_path / "r").mkdir()
    _, ctl = make_client(pipeline, tmp_path / "r", reward="python_docs_w0.5")
    assert (ctl.reward.w, ctl.reward.metric) == (0.5, "token_precision")
    assert settings_from_args(p.parse_args(["--reward", '{"type": "thumbs"}'])).reward == {"type": "thumbs"}


@pytest.mark.parametrize("policy", ["hier_ucb", "additive_lucb", "thompson"])
def test_best_is_one_configuration_for_the_tuner_the_service_and_the_replay(pipeline, tmp_path, policy):
    """One event log, three readers: Tuner.best(1), GET /v1/best and the replay's deployed configuration agree
    (the stream revisits questions, so the de-duplication of repeated cells is part of what must agree)."""
    from autorag_hp import SearchSpace, Tuner
    from autorag_hp.evaluation.replay import SyntheticTable, grid_scores, question_stream, replay

    space = SearchSpace(SPACE)
    R = SyntheticTable.make(space, seed=3).replay_table(10).reward_matrix(0.5)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    batch, calls = 2, 40
    stream = question_stream(10, calls, 4)
    tuner = Tuner(space, policy=policy, storage=url, seed=4, batch_size=batch, study="log")
    for c in range(calls):
        trial = tuner.suggest(question=str(int(stream[c])))
        tuner.report(trial.id, float(R[space.index(trial.config), stream[c]]))
    best = tuner.best(1)[0]
    rep = replay(R, space, policy, batch=batch, seed=4, fractions=[calls / R.size])
    assert rep["deployed"][0] == grid_scores(R)[space.index(best.config)]
    client, ctl = make_client(pipeline, tmp_path, storage=f"sqlite:///{tmp_path / 'svc2.db'}", policy=policy, seed=4,
                              batch_size=batch)
    ctl.tuner.import_events(tuner.export_events())
    served = client.get("/v1/best?k=1", headers=FB).json()["best"][0]
    assert served["config"] == best.config.to_dict() and served["count"] == best.count
