"""Storage outage, fast: the service reaches the real PostgreSQL through a TCP relay the test can cut.

While the relay is cut every call that needs the store answers 503 with Retry-After and nothing else;
once it is restored the same app recovers by itself (no restart). The full-size version, which stops the
PostgreSQL server itself under load, is ``tests/test_service_faults.py`` / ``autorag-hp loadtest --mode pg-restart``.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytestmark = pytest.mark.postgres


class Relay:
    """A loopback TCP relay to PostgreSQL; ``cut()`` drops every connection and refuses new ones."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.server.listen(64)
        self.open = True
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.open = False
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                    c.close()
                except OSError:
                    pass
            self.conns.clear()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        self.server.close()


def test_storage_outage_answers_503_and_recovers_by_itself(pg_url, unique_name, tmp_path):
    from fastapi.testclient import TestClient
    from sqlalchemy.engine import make_url

    from autorag_hp.rag import load_pipeline
    from autorag_hp.service.app import create_app
    from autorag_hp.service.auth import KeyRing
    from autorag_hp.service.controller import ServiceSettings

    u = make_url(pg_url)
    relay = Relay(u.host or "127.0.0.1", u.port or 5432)
    url = pg_url.replace(f"{u.host}:{u.port or 5432}", f"127.0.0.1:{relay.port}")
    keys = {"clients": {"web": {"ask": "ask-web-0123456789", "feedback": "fb-web-0123456789"}}}
    ask = {"Authorization": "Bearer ask-web-0123456789"}
    fb = {"Authorization": "Bearer fb-web-0123456789"}
    settings = ServiceSettings(storage=url, study=unique_name, generator="extractive", space={"top_k": [1, 3]},
                               config={"embedding": "bm25"})
    app = create_app(settings, KeyRing.from_mapping(keys),
                     pipeline=load_pipeline("python_docs", generator="extractive"))
    ctl = app.state.controller
    try:
        with TestClient(app) as client:
            t1 = client.post("/v1/ask", json={"question": "How do I copy a file?"}, headers=ask).json()["trial_id"]
            relay.cut()
            for call in (lambda: client.post("/v1/ask", json={"question": "How do I copy a file?"}, headers=ask),
                         lambda: client.post("/v1/feedback", json={"trial_id": t1, "thumbs": "up"}, headers=fb),
                         lambda: client.get("/v1/best", headers=fb),
                         lambda: client.get("/healthz")):
                r = call()
                assert r.status_code == 503, r.text
                assert r.headers.get("retry-after") == "1"
                assert r.json()["error"]["code"] == "storage_unavailable"
            relay.restore()
            deadline = time.monotonic() + 30
            while client.get("/healthz").status_code != 200:
                assert time.monotonic() < deadline, "the service did not recover after the storage came back"
                time.sleep(0.05)
            r = client.post("/v1/feedback", json={"trial_id": t1, "thumbs": "up"}, headers=fb)
            assert r.status_code == 200, r.text  # the feedback refused during the outage is accepted now, once
            r = client.post("/v1/ask", json={"question": "How do I copy a file?"}, headers=ask)
            assert r.status_code == 200, r.text
            assert sum(s.count for s in ctl.tuner.storage.stats(ctl.study).values()) == 1
            assert ctl.policy.t == 2  # the refused ask left no trace in the shared log
    finally:
        relay.close()
