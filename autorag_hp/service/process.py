"""Start and stop service replicas as real processes (``autorag-hp serve`` on loopback ports).

Used by the load / fault commands and the tests: no mocks, real uvicorn processes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replica:
    """One ``autorag-hp serve`` process. ``start()`` returns once ``/healthz`` answers 200."""

    def __init__(self, args: Sequence[str], port: int | None = None, log: str | Path | None = None,
                 env: dict[str, str] | None = None, name: str = "replica"):
        self.args = list(args)
        self.port = port or free_port()
        self.log = Path(log) if log else None
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
        self.name = name
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> Replica:
        self.launch()
        self.wait_healthy(timeout)
        return self

    def launch(self) -> Replica:
        """Start the process without waiting (start several, then :meth:`wait_healthy` each)."""
        cmd = [sys.executable, "-m", "autorag_hp.cli", "serve", *self.args, "--port", str(self.port),
               "--replica", self.name]
        if self.log:
            with open(self.log, "ab") as out:  # the child keeps its own descriptor
                self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env)
        else:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env)
        return self

    def wait_healthy(self, timeout: float = 90.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                tail = self.log.read_text()[-2000:] if self.log and self.log.exists() else ""
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before becoming healthy\n{tail}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} on port {self.port} did not become healthy within {timeout:.0f} s")

    def kill(self) -> None:
        """kill -9: no shutdown handler runs."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> Replica:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


#: The small space the load and fault runs tune (9 configurations: chunking x top_k over BM25).
LOAD_SPACE = {"chunk_size": [256, 512, 1024], "top_k": [1, 3, 5]}


class Cluster:
    """N replicas of ``autorag-hp serve`` (extractive generator, BM25) on one study of ``storage``, sharing a keys
    file with one client, ``load``; ``space`` is the tuned space (JSON-able mapping). ``cores`` (default: this
    process's) are the CPUs the replicas may use, ``serve --cpus``: with ``pin``, replica i runs on the i-th of
    them alone (modulo their number); without, every replica may use all of them."""

    def __init__(self, pipeline: str, storage: str, space: dict, study: str, workdir: Path, n: int,
                 extra: list[str] | None = None, pin: bool = False, cores: set[int] | None = None):
        from autorag_hp.service.auth import KeyRing

        self.keys = KeyRing.generate(("load",))
        kpath = workdir / "keys.json"
        kpath.write_text(json.dumps(self.keys))
        self.ask_key = self.keys["clients"]["load"]["ask"]
        self.fb_key = self.keys["clients"]["load"]["feedback"]
        self.study = study
        serve = ["--pipeline", pipeline, "--generator", "extractive", "--set", "embedding=bm25",
                 "--space", json.dumps(space), "--storage", storage, "--study", study, "--keys", str(kpath),
                 "--explore", "0.5", "--feedback-window", "120", "--log-level", "error", *(extra or [])]
        ordered = sorted(cores or os.sched_getaffinity(0))

        def cpus(i: int) -> list[str]:
            if pin:
                return ["--cpus", str(ordered[i % len(ordered)])]
            return ["--cpus", ",".join(map(str, ordered))] if cores else []

        self.replicas = [Replica(serve + cpus(i), log=workdir / f"replica{i}.log", name=f"replica{i}")
                         for i in range(n)]

    def start(self) -> Cluster:
        for r in self.replicas:
            r.launch()
        for r in self.replicas:
            r.wait_healthy(180)
        return self

    def stop(self) -> None:
        for r in self.replicas:
            r.stop()

    @property
    def urls(self) -> list[str]:
        return [r.url for r in self.replicas]


def questions(pipeline_path: str) -> list:
    """The question set of a pipeline spec (loaded with the extractive generator: no model)."""
    from autorag_hp.rag import load_pipeline

    return load_pipeline(pipeline_path, generator="extractive").questions()
