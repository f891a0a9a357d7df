"""The load generator of ``autorag-hp loadtest`` against a real HTTP/1.1 server on loopback (the standard
library's, answering ``/v1/ask`` and ``/v1/feedback`` as the service does): kept-alive connections, every ask
followed by its feedback through the next replica, counts merged across processes, and a server that closes
connections does not stop the load."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from autorag_hp.commands import loadgen


class Server:
    def __init__(self, close_every: int = 0):
        self.asks: list[str] = []
        self.feedbacks: list[dict] = []
        self.connections = 0
        self.keys: set[str] = set()
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with lock:
                    outer.connections += 1
                self.served = 0

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    outer.keys.add(self.headers["Authorization"])
                    if self.path == "/v1/ask":
                        outer.asks.append(body["question"])
                        out = {"trial_id": f"t{len(outer.asks)}", "sources": ["s1"],
                               "timing_ms": {"tuner": 1.0, "pipeline": 2.0}}
                    else:
                        outer.feedbacks.append(body)
                        out = {"ok": True}
                data = json.dumps(out).encode()
                self.served += 1
                close = close_every and self.served % close_every == 0
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


QS = [("what is a list?", "s1"), ("what is a dict?", "s2"), ("what is a set?", None)]


def test_every_ask_gets_its_feedback_on_kept_alive_connections():
    with Server() as a, Server() as b:
        out = loadgen.run([a.url, b.url], "ASK", "FB", QS, n=40, clients=4, seed=0)
    assert out["status"] == {"ask 200": 40, "feedback 200": 40}
    assert len(out["lat_ask"]) == len(out["lat_fb"]) == 40 and out["wall_s"] > 0 and out["cpu_s"] >= 0
    assert len(a.asks) == len(b.asks) == 20  # round robin over the replicas; feedback through the other one
    assert len(a.feedbacks) == len(b.feedbacks) == 20
    assert a.connections <= 4 and b.connections <= 4  # one kept-alive connection per client and replica
    assert a.keys == b.keys == {"Bearer ASK", "Bearer FB"}
    # each replica numbers its own trials (t1..t20 on both): every one got exactly one feedback, on the other one
    assert sorted(f["trial_id"] for f in a.feedbacks) == sorted(f["trial_id"] for f in b.feedbacks)
    assert {f["trial_id"] for f in a.feedbacks} == {f"t{i}" for i in range(1, 21)}
    thumbs = [f["thumbs"] for f in a.feedbacks + b.feedbacks]
    assert set(thumbs) <= {"up", "down"} and "up" in thumbs and "down" in thumbs  # up when s1 is the gold source
    assert out["server_tuner"] == [1e-3] * 40 and out["server_pipeline"] == [2e-3] * 40


def test_server_closing_connections_does_not_lose_requests():
    with Server(close_every=3) as a:
        out = loadgen.run([a.url], "ASK", "FB", QS, n=30, clients=3, seed=1)
    assert out["status"] == {"ask 200": 30, "feedback 200": 30}
    assert a.connections >= 60 // 3  # it reconnected after each close


def test_processes_split_the_load_and_merge_their_counts():
    with Server() as a:
        out = loadgen.run([a.url], "ASK", "FB", QS, n=31, clients=4, seed=2, procs=2)
    assert out["status"] == {"ask 200": 31, "feedback 200": 31}
    assert len(a.asks) == 31 and len(out["lat_ask"]) == 31


def test_refused_connections_are_counted_not_raised():
    with Server() as a:
        url = a.url
    out = loadgen.run([url], "ASK", "FB", QS, n=5, clients=1, seed=0)  # nothing listens there any more
    assert out["status"] == {"ask ConnectionRefusedError": 5} and out["lat_ask"] == []


def test_more_processes_than_clients_is_refused():
    with pytest.raises(ValueError, match="--load-procs 3 needs at least as many clients"):
        loadgen.run(["http://127.0.0.1:1"], "A", "F", QS, n=3, clients=2, seed=0, procs=3)
