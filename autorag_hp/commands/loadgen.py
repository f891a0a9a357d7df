"""The load generator of ``autorag-hp loadtest --mode load``: cheap enough that it measures the service.

An ask plus its feedback cost the httpx-based client 6–12 ms of CPU, more than the replica that served them
(3–10 ms), so on a small machine the client, not the service, set the ceiling that the replica count was
meant to move. This client speaks just enough HTTP/1.1 for a JSON POST on a kept-alive connection
(``asyncio`` streams, ``Content-Length`` bodies) and can run in several processes (``procs``), each with its
share of the clients and the requests. Its own CPU per ask is measured and reported beside the replicas'.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any
from urllib.parse import urlsplit


class Connection:
    """One kept-alive HTTP/1.1 connection to ``url``'s host; reconnects when the server closed it."""

    def __init__(self, url: str):
        u = urlsplit(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self._host_header = f"{self.host}:{self.port}".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, payload: dict, key: str) -> tuple[int, Any]:
        """POST ``payload`` as JSON; returns (status, parsed JSON body or None)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        body = json.dumps(payload).encode()
        self.writer.write(b"POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                          % (path.encode(), self._host_header, key.encode(), len(body), body))
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            status, length, close = int(head[9:12]), None, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length is None:
                raise ConnectionError("response without Content-Length")
            data = await self.reader.readexactly(length) if length else b""
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            self.close()
            raise ConnectionError(f"bad or cut response: {exc}") from exc
        if close:
            self.close()
        ctype_json = data[:1] in (b"{", b"[")
        return status, json.loads(data) if ctype_json else None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def drive(urls: list[str], ask_key: str, fb_key: str, qs: list[tuple[str, str | None]], n: int,
                clients: int, seed: int, offset: int = 0) -> dict[str, Any]:
    """``clients`` concurrent clients share ``n`` asks. Each ask goes to one replica (round robin over ``urls``)
    and its feedback to the next (thumbs up when the first source is the question's gold one). ``qs``: pairs
    (question, gold source). Returns latencies (s), status counts, the server's own timings, wall time."""
    lat_ask: list[float] = []
    lat_fb: list[float] = []
    server_tuner: list[float] = []
    server_pipe: list[float] = []
    status: dict[str, int] = {}
    counter = iter(range(offset, offset + n))
    qs = list(qs)
    random.Random(seed).shuffle(qs)

    def count(key: str) -> None:
        status[key] = status.get(key, 0) + 1

    async def client(c: int) -> None:
        conns = {u: Connection(u) for u in urls}
        try:
            for i in counter:
                question, gold = qs[(c * 7919 + i) % len(qs)]
                url = urls[i % len(urls)]
                t0 = time.perf_counter()
                try:
                    code, body = await conns[url].post("/v1/ask", {"question": question}, ask_key)
                except OSError as exc:  # refused, reset, cut: counted, the client goes on
                    conns[url].close()
                    count(f"ask {type(exc).__name__}")
                    continue
                lat_ask.append(time.perf_counter() - t0)
                count(f"ask {code}")
                if code != 200:
                    continue
                server_tuner.append(body["timing_ms"]["tuner"] / 1e3)
                server_pipe.append(body["timing_ms"]["pipeline"] / 1e3)
                hit = gold is not None and gold in body["sources"][:1]
                fb_url = urls[(i + 1) % len(urls)]  # feedback through the other replica
                t0 = time.perf_counter()
                try:
                    code, _ = await conns[fb_url].post(
                        "/v1/feedback", {"trial_id": body["trial_id"], "thumbs": "up" if hit else "down"}, fb_key)
                except OSError as exc:
                    conns[fb_url].close()
                    count(f"feedback {type(exc).__name__}")
                    continue
                lat_fb.append(time.perf_counter() - t0)
                count(f"feedback {code}")
        finally:
            for conn in conns.values():
                conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "lat_ask": lat_ask, "lat_fb": lat_fb, "status": status, "server_tuner": server_tuner,
            "server_pipeline": server_pipe}


def _drive_in_process(args: tuple) -> dict[str, Any]:
    """One load-generator process: its share of the clients and asks; adds the process's CPU seconds."""
    start_at, *rest = args
    delay = start_at - time.time()
    if delay > 0:  # all processes begin together, after each has imported and forked
        time.sleep(delay)
    cpu0 = os.times()
    out = asyncio.run(drive(*rest))
    cpu1 = os.times()
    out["cpu_s"] = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    out["ended_at"] = time.time()
    return out


def run(urls: list[str], ask_key: str, fb_key: str, qs: list[tuple[str, str | None]], n: int, clients: int,
        seed: int, procs: int = 1) -> dict[str, Any]:
    """Drive the load from ``procs`` processes (1: in this one) and merge their results. ``wall_s`` runs from
    the common start to the last process's end; ``cpu_s`` is the load generator's CPU, all processes."""
    if procs <= 1:
        return _drive_in_process((0.0, urls, ask_key, fb_key, qs, n, clients, seed))
    if clients < procs:
        raise ValueError(f"--load-procs {procs} needs at least as many clients, got --clients {clients}")
    shares = [(n // procs + (p < n % procs), clients // procs + (p < clients % procs)) for p in range(procs)]
    offsets = [sum(s[0] for s in shares[:p]) for p in range(procs)]
    import multiprocessing

    with ProcessPoolExecutor(procs, mp_context=multiprocessing.get_context("fork")) as pool:
        start_at = time.time() + 0.3
        parts = list(pool.map(_drive_in_process, [(start_at, urls, ask_key, fb_key, qs, k, c, seed + p, off)
                                                  for p, ((k, c), off) in enumerate(zip(shares, offsets))]))
    merged: dict[str, Any] = {"wall_s": max(p["ended_at"] for p in parts) - start_at, "status": {}, "cpu_s": sum(p["cpu_s"] for p in parts)}
    for key in ("lat_ask", "lat_fb", "server_tuner", "server_pipeline"):
        merged[key] = [x for p in parts for x in p[key]]
    for p in parts:
        for k, v in p["status"].items():
            merged["status"][k] = merged["status"].get(k, 0) + v
    return merged
