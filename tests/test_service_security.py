"""The service's holes, closed (issue 15, section 3), each probe a test: key scopes (an ask key sending a
reference), non-ASCII ticket signatures, error bodies without internal text, 10,000 made-up HTTP methods
against /metrics, loosely typed feedback, another client's trial answering like an unknown one, and stalled
clients against a real ``autorag-hp serve`` process on raw sockets."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import time

import pytest

pytest.importorskip("fastapi")

from service_support import (  # shared keys, client and helpers
    ADMIN,
    ASK,
    ASK_BOT,
    FB,
    FB_BOT,
    KEYS,
    SCORE,
    Clock,
    Q,
    make_client,
    snapshot,
)


# --- scopes ---------------------------------------------------------------------------------------------------
def test_only_a_score_key_may_send_a_reference(pipeline, tmp_path):
    client, ctl = make_client(pipeline, tmp_path)
    ref = pipeline.questions()[0]
    with client:
        before = snapshot(ctl)
        r = client.post("/v1/ask", json={"question": ref.question, "reference": ref.answer}, headers=ASK)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
        assert "score" in r.json()["error"]["message"]
        assert snapshot(ctl) == before and ctl.counters["asks"] == 0  # refused before anything was asked
        for headers in (SCORE, ADMIN):
            r = client.post("/v1/ask", json={"question": ref.question, "reference": ref.answer}, headers=headers)
            assert r.status_code == 200, r.text
            assert isinstance(r.json()["reward"], float) and r.json()["feedback_until"] is None
        # a score key also asks without a reference; its trials take feedback from its client's feedback key
        r = client.post("/v1/ask", json={"question": Q}, headers=SCORE)
        assert r.status_code == 200 and r.json()["reward"] is None
        tid = r.json()["trial_id"]
        assert client.post("/v1/feedback", json={"trial_id": tid, "thumbs": "up"}, headers=SCORE).status_code == 403
        assert client.get("/v1/best", headers=SCORE).status_code == 403
        assert client.post("/v1/feedback", json={"trial_id": tid, "thumbs": "up"}, headers=FB).status_code == 200
        # an ask key still asks without one
        assert client.post("/v1/ask", json={"question": Q}, headers=ASK).status_code == 200


def test_keys_files_without_scores_keep_working_and_generate_grants_score():
    from autorag_hp.service.auth import KeyRing, Principal

    old = {"clients": {"web": {"ask": "a" * 16, "feedback": "f" * 16}}, "admin": ["x" * 16]}
    ring = KeyRing.from_mapping(old)
    assert ring.lookup("a" * 16) == Principal("web", "ask") and ring.lookup("a" * 16).scopes == {"ask"}
    assert ring.lookup("f" * 16).scopes == {"feedback"}
    assert ring.lookup("x" * 16).scopes == {"ask", "feedback", "score", "admin"}
    ring = KeyRing.from_mapping({"clients": {"web": {"ask": ["a" * 16, "b" * 16], "score": "s" * 16}}})
    assert ring.lookup("b" * 16).can("ask") and not ring.lookup("b" * 16).can("score")
    assert ring.lookup("s" * 16).scopes == {"ask", "score"} and not ring.lookup("s" * 16).can("feedback")
    with pytest.raises(ValueError):
        KeyRing.from_mapping({"clients": {"web": {"ask": "a" * 16, "admin": "b" * 16}}})  # admin is not per client
    spec = KeyRing.generate(("load",))
    ring = KeyRing.from_mapping(spec)
    keys = spec["clients"]["load"]
    assert [ring.lookup(keys[r]).role for r in ("ask", "feedback", "score")] == ["ask", "feedback", "score"]
    assert set(KeyRing.generate(("a",), score=False)["clients"]["a"]) == {"ask", "feedback"}
    assert KeyRing.open().lookup(None).can("score")  # --insecure-no-auth: everyone is admin


# --- tickets and error bodies ------------------------------------------------------------------------------------
def test_non_ascii_or_non_hex_signatures_are_422_never_500(pipeline, tmp_path):
    from autorag_hp.service.auth import KeyRing, MalformedTicketError

    client, ctl = make_client(pipeline, tmp_path)
    with client:
        tid = client.post("/v1/ask", json={"question": Q}, headers=ASK).json()["trial_id"]
        ident, sig = tid.split(".")
        bad = [f"{ident}.{'é' * 20}", f"{ident}.{'٣' * 20}", f"{ident}.{'ｆ' * 20}", f"{ident}.{sig.upper()}",
               f"{ident}.{sig[:-1]}", f"{ident}.{sig}0", f"{ident}.{sig[:-1]}g", f"{ident[:-1]}é.{sig}",
               f"{ident}.{sig}.{sig}", f".{sig}", f"{ident}.", "é" * 40]
        before = snapshot(ctl)
        for ticket in bad:
            for headers in (FB, ADMIN):
                r = client.post("/v1/feedback", json={"trial_id": ticket, "reward": 1}, headers=headers)
                assert r.status_code == 422 and r.json()["error"]["code"] == "malformed_trial_id", (ticket, r.text)
        assert snapshot(ctl) == before
        ring = KeyRing.from_mapping(KEYS)
        for ticket in bad:
            with pytest.raises(MalformedTicketError):
                ring.parse_ticket(ctl.study, ticket, "web")
        assert client.post("/v1/feedback", json={"trial_id": tid, "reward": 1}, headers=FB).status_code == 200


def test_error_bodies_name_an_incident_never_the_exception_text(pipeline, tmp_path, monkeypatch, caplog):
    client, ctl = make_client(pipeline, tmp_path, raise_server_exceptions=False)
    secret = "password=hunter2 at /srv/secret/path"

    def boom(*a, **k):
        raise RuntimeError(secret)

    with client, caplog.at_level(logging.ERROR, logger="autorag_hp.service"):
        monkeypatch.setattr(ctl, "best", boom)
        r = client.get("/v1/best", headers=FB)
        assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
        assert secret not in r.text and "RuntimeError" not in r.text
        ref = re.search(r"incident ([0-9a-f]{12})", r.json()["error"]["message"]).group(1)
        monkeypatch.setattr(ctl.pipeline, "run", boom)
        r = client.post("/v1/ask", json={"question": Q}, headers=ASK)
        assert r.status_code == 500 and r.json()["error"]["code"] == "pipeline_failed"
        assert secret not in r.text and "RuntimeError" not in r.text
        ref2 = re.search(r"incident ([0-9a-f]{12})", r.json()["error"]["message"]).group(1)
    logged = {rec.getMessage(): rec for rec in caplog.records}
    for ref_id in (ref, ref2):  # the log has the id and the exception, with its text
        rec = next(rec for msg, rec in logged.items() if ref_id in msg)
        assert rec.exc_info and secret in str(rec.exc_info[1])


# --- /metrics ----------------------------------------------------------------------------------------------------
async def _asgi_call(app, method: str, path: str) -> int:
    status = 0

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(msg):
        nonlocal status
        if msg["type"] == "http.response.start":
            status = msg["status"]

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": b"", "headers": [(b"host", b"test")], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80)}
    await app(scope, receive, send)
    return status


def test_ten_thousand_made_up_methods_leave_the_metrics_bounded(pipeline, tmp_path):
    client, ctl = make_client(pipeline, tmp_path)
    app = client.app
    with client:
        client.post("/v1/ask", json={"question": Q}, headers=ASK)
        size_before = len(client.get("/metrics").content)

        async def flood():
            paths = ("/v1/ask", "/v1/feedback", "/healthz", "/metrics", "/")
            statuses = set()
            for i in range(10_000):  # the whole app (middleware, router, handlers), without sockets
                path = paths[i % 5] if i % 2 else f"/made/up/{i}"
                statuses.add(await _asgi_call(app, f"M{i:05d}X", path))
            return statuses

        assert asyncio.run(flood()) <= {404, 405}
        text = client.get("/metrics").text
    series = [ln for ln in text.splitlines() if ln.startswith("autorag_http_requests_total{")]
    methods = {re.search(r'method="([^"]*)"', ln).group(1) for ln in series}
    paths = {re.search(r'path="([^"]*)"', ln).group(1) for ln in series}
    assert methods == {"GET", "POST", "other"}, methods
    assert paths <= {"/v1/ask", "/v1/feedback", "/healthz", "/metrics", "/", "other"}, paths
    other = sum(float(ln.rsplit(" ", 1)[1]) for ln in series if 'method="other"' in ln)
    assert other == 10_000
    assert len(series) <= 12
    assert len(text.encode()) < size_before + 8_000, "the scrape grew with the made-up methods"
    assert len(text.encode()) < 40_000


def test_the_scrape_can_require_the_admin_key(pipeline, tmp_path):
    client, _ = make_client(pipeline, tmp_path, metrics_auth=True)
    with client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=FB).status_code == 403
        r = client.get("/metrics", headers=ADMIN)
        assert r.status_code == 200 and "autorag_decisions" in r.text
        assert r.headers["content-type"].startswith("text/plain")
    (tmp_path / "open").mkdir()
    client, _ = make_client(pipeline, tmp_path / "open")
    with client:
        assert client.get("/metrics").status_code == 200  # open by default, as before


# --- strict bodies -----------------------------------------------------------------------------------------------
def test_loose_types_are_refused_and_documented_thumbs_accepted(pipeline, tmp_path):
    client, ctl = make_client(pipeline, tmp_path)
    with client:
        tid = client.post("/v1/ask", json={"question": Q}, headers=ASK).json()["trial_id"]
        loose = [{"reward": "0.5"}, {"reward": True}, {"reward": False}, {"reward": None, "thumbs": 0},
                 {"thumbs": 0}, {"thumbs": "yes"}, {"thumbs": True}, {"thumbs": False}, {"thumbs": 1.0},
                 {"thumbs": -1.0}, {"thumbs": 2}, {"thumbs": "UP"}, {"thumbs": "1"}, {"thumbs": [1]},
                 {"rating": "4"}, {"rating": True}, {"reward": [0.5]}, {"reward": {"v": 1}}]
        before = snapshot(ctl)
        for fields in loose:
            r = client.post("/v1/feedback", json={"trial_id": tid, **fields}, headers=FB)
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", (fields, r.text)
        for body in ({"trial_id": 12345, "reward": 1}, {"question": 42}, {"question": True}, {"question": ["q"]},
                     {"question": Q, "reference": 7}):
            path, headers = ("/v1/ask", SCORE) if "question" in body else ("/v1/feedback", FB)
            r = client.post(path, json=body, headers=headers)
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", (body, r.text)
        assert snapshot(ctl) == before
        for fields, reward in (({"thumbs": -1}, -1.0), ({"thumbs": "down"}, -1.0), ({"thumbs": 1}, 1.0),
                               ({"thumbs": "up"}, 1.0), ({"rating": 4}, 0.5), ({"rating": 4.5}, 0.75),
                               ({"reward": 1}, 1.0), ({"reward": -0.25}, -0.25)):
            t = client.post("/v1/ask", json={"question": Q}, headers=ASK).json()["trial_id"]
            r = client.post("/v1/feedback", json={"trial_id": t, **fields}, headers=FB)
            assert r.status_code == 200 and r.json()["reward"] == reward, (fields, r.text)


# --- another client's trial ------------------------------------------------------------------------------------
def test_another_clients_trial_answers_exactly_like_an_unknown_one(pipeline, tmp_path):
    clock = Clock()
    client, ctl = make_client(pipeline, tmp_path, clock=clock, feedback_window=60.0)
    with client:
        def shape(r, ident):
            return r.status_code, json.loads(r.text.replace(ident, "ID"))

        done = client.post("/v1/ask", json={"question": Q}, headers=ASK).json()["trial_id"]
        assert client.post("/v1/feedback", json={"trial_id": done, "reward": 0.5}, headers=FB).status_code == 200
        old = client.post("/v1/ask", json={"question": Q}, headers=ASK).json()["trial_id"]
        clock.t += 61  # `old` is now past its window
        pending = client.post("/v1/ask", json={"question": Q}, headers=ASK).json()["trial_id"]
        made_up = "0123456789abcdef." + "0" * 20
        before = snapshot(ctl)
        answers = set()
        for ticket in (pending, done, old, made_up, pending.split(".")[0] + "." + "f" * 20):
            r = client.post("/v1/feedback", json={"trial_id": ticket, "reward": 1}, headers=FB_BOT)
            status, body = shape(r, ticket.split(".")[0])
            answers.add((status, json.dumps(body, sort_keys=True)))
        assert len(answers) == 1, answers
        status, body = answers.pop()
        assert status == 404 and json.loads(body)["error"]["code"] == "unknown_trial"
        assert snapshot(ctl) == before
        # web's own feedback key tells its trials apart as before; the admin sees every trial
        assert client.post("/v1/feedback", json={"trial_id": done, "reward": 1}, headers=FB).status_code == 409
        assert client.post("/v1/feedback", json={"trial_id": old, "reward": 1}, headers=FB).status_code == 410
        assert client.post("/v1/feedback", json={"trial_id": made_up, "reward": 1}, headers=ADMIN).status_code == 404
        bot = client.post("/v1/ask", json={"question": Q}, headers=ASK_BOT).json()["trial_id"]
        assert client.post("/v1/feedback", json={"trial_id": bot, "reward": 1}, headers=FB).status_code == 404
        assert client.post("/v1/feedback", json={"trial_id": bot, "reward": 1}, headers=FB_BOT).status_code == 200
        assert client.post("/v1/feedback", json={"trial_id": pending, "reward": 1}, headers=ADMIN).status_code == 200


# --- stalled clients against a real server -------------------------------------------------------------------------
def test_serve_exposes_the_http_limits_with_safe_defaults():
    import argparse

    from autorag_hp.commands.serve import add_arguments, limits_from_args, settings_from_args
    from autorag_hp.service.server import HTTPLimits

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args([])
    assert limits_from_args(args) == HTTPLimits()
    assert (settings_from_args(args).body_timeout, settings_from_args(args).metrics_auth) == (30.0, False)
    lim = HTTPLimits()
    assert 0 < lim.header_timeout <= 30 and lim.limit_concurrency and lim.max_header_bytes <= 65536
    args = p.parse_args(["--header-timeout", "2", "--body-timeout", "3", "--keep-alive", "4",
                         "--limit-concurrency", "64", "--max-header-bytes", "8192", "--metrics-auth"])
    assert limits_from_args(args) == HTTPLimits(2.0, 4, 64, 8192)
    assert (settings_from_args(args).body_timeout, settings_from_args(args).metrics_auth) == (3.0, True)
    with pytest.raises(ValueError):
        HTTPLimits(header_timeout=0)


def _stall(port: int, data: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if data:
        s.sendall(data)
    return s


def _read_until_closed(s: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed (seconds from now)."""
    t0, out = time.monotonic(), b""
    s.settimeout(limit)
    try:
        while chunk := s.recv(4096):
            out += chunk
    except TimeoutError:
        return out, float("inf")
    except ConnectionResetError:
        pass
    return out, time.monotonic() - t0


def test_stalled_clients_are_cut_off_and_others_are_served(tmp_path):
    import httpx

    from autorag_hp.service.process import Replica

    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(KEYS))
    args = ["--pipeline", "python_docs_faq", "--generator", "extractive", "--set", "embedding=bm25",
            "--space", json.dumps({"top_k": [1, 3]}), "--storage", f"sqlite:///{tmp_path / 's.db'}", "--keys",
            str(keys), "--header-timeout", "1", "--body-timeout", "1", "--limit-concurrency", "8", "--log-level", "error"]
    ask_head = (b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ask-web-0123456789\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")
    with Replica(args, log=tmp_path / "serve.log") as rep, httpx.Client(base_url=rep.url, timeout=5) as http:
        t0 = time.monotonic()
        stalled = {
            "silent": _stall(rep.port, b""),
            "half a request line": _stall(rep.port, b"POST /v1/as"),
            "half the headers": _stall(rep.port, b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Le"),
            "half a body": _stall(rep.port, ask_head + b'{"question": "How do'),
        }
        drip = _stall(rep.port, ask_head)
        # while they stall, other clients are served at once
        for _ in range(3):
            t = time.monotonic()
            assert http.get("/healthz").status_code == 200
            r = http.post("/v1/ask", json={"question": Q}, headers=ASK)
            assert r.status_code == 200, r.text
            assert time.monotonic() - t < 2.0
        for _ in range(12):  # a body dripped a byte at a time is cut at the deadline too, progress or not
            try:
                drip.sendall(b" ")
            except OSError:
                break
            time.sleep(0.25)
        got = {name: _read_until_closed(s, 8.0) for name, s in stalled.items()}
        got["a dripping body"] = _read_until_closed(drip, 8.0)
        for name, (_, closed_after) in got.items():
            assert closed_after < 8.0, f"{name}: the connection was not closed"
        assert time.monotonic() - t0 < 9.0
        assert got["silent"][0] == b""
        for name in ("half a request line", "half the headers"):
            assert got[name][0].startswith(b"HTTP/1.1 408"), (name, got[name])
        for name in ("half a body", "a dripping body"):
            head, _, body = got[name][0].partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408") and json.loads(body)["error"]["code"] == "body_timeout", got[name]
        for s in (*stalled.values(), drip):
            s.close()
        assert http.post("/v1/ask", json={"question": Q}, headers=ASK).status_code == 200

        # the connection cap: past it a request gets 503 at once instead of queueing; slots free when stallers go
        http.close()
        hogs = [_stall(rep.port, b"") for _ in range(8)]
        with httpx.Client(base_url=rep.url, timeout=5) as fresh:
            deadline = time.monotonic() + 10  # until the server has accepted every hog (no fixed sleep)
            while True:
                t = time.monotonic()
                code = fresh.get("/healthz").status_code
                if code == 503:
                    break
                assert code == 200 and time.monotonic() < deadline, f"the connection cap never engaged ({code})"
            assert time.monotonic() - t < 2.0  # refused at once, not queued
        for s in hogs:
            assert _read_until_closed(s, 8.0)[1] < 8.0
            s.close()
        with httpx.Client(base_url=rep.url, timeout=5) as fresh:
            assert fresh.get("/healthz").status_code == 200
