"""``autorag-hp dashboard``: the dashboard, read-only, over a SQLite study that a real Tuner wrote, with no pipeline
loaded. The view's numbers are the writing tuner's own, no route writes, the storage is unchanged after serving,
and the page renders in the real headless Chromium the dashboard test uses (screenshot kept as an artifact)."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import time

import pytest

pytest.importorskip("fastapi")

from browser_support import chromium_binary, render  # noqa: E402  (the page tests' Chromium)

SPACE = {"chunk_size": [256, 512, 1024], "top_k": [1, 3, 5]}
KEYS = {"clients": {"web": {"ask": "ask-web-0123456789", "feedback": "fb-web-0123456789"}},
        "admin": ["admin-0123456789ab"]}


def reward(config, rng) -> float:
    """A small hand-written table: larger top_k is better, 512-token chunks best, plus seeded noise."""
    base = {1: -0.4, 3: 0.1, 5: 0.4}[config["top_k"]] + {256: 0.0, 512: 0.2, 1024: -0.1}[config["chunk_size"]]
    return max(-1.0, min(1.0, base + rng.normal(0, 0.2)))


def make_study(path, n: int = 60, policy: str = "online", study: str = "online"):
    """``n`` decisions of a real Tuner on SQLite (the online policy as the service runs it, or a plain one as
    ``tune`` does); every fifth trial is left pending. Returns the writing tuner."""
    import numpy as np

    from autorag_hp import Tuner
    from autorag_hp.policies.online import OnlinePolicy
    from autorag_hp.space import SearchSpace

    rng = np.random.default_rng(0)
    space = SearchSpace(SPACE)
    pol = OnlinePolicy(space, seed=0, explore=0.5, tag="faq-v1") if policy == "online" else policy
    ticks = itertools.count()
    url = path if isinstance(path, str) else f"sqlite:///{path}"
    tuner = Tuner(space, policy=pol, storage=url, seed=0, study=study,
                  clock=lambda: 1000.0 + next(ticks))
    for i in range(n):
        t = tuner.suggest(question=f"q{i}", owner="web")
        if i % 5 != 4:
            tuner.report(t.id, reward(t.config.to_dict(), rng))
    return tuner


def stored(storage, study="online"):
    return (len(storage.events(study)), [(t.trial_id, t.state, t.reward) for t in storage.trials(study)])


@pytest.mark.parametrize("policy", ["online", "hier_ucb"])
def test_view_shows_what_the_writing_tuner_knows_and_writes_nothing(tmp_path, policy):
    from fastapi.testclient import TestClient

    from autorag_hp.service.app import create_app
    from autorag_hp.service.auth import KeyRing
    from autorag_hp.service.readonly import StudyView

    writer = make_study(tmp_path / "s.db", policy=policy)
    before = stored(writer.storage)
    keys = KeyRing.from_mapping(KEYS)
    view = StudyView(f"sqlite:///{tmp_path / 's.db'}", "online", keys)
    assert view.meta["batch_size"] == 1 and view.space.size == 9
    assert [e.config for e in view.tuner.best(5)] == [e.config for e in writer.best(5)]
    app = create_app(view.settings, keys, controller=view, read_only=True)
    with TestClient(app) as http:
        assert http.get("/v1/dashboard").status_code == 401
        fb, admin = {"Authorization": "Bearer fb-web-0123456789"}, {"X-API-Key": "admin-0123456789ab"}
        d = http.get("/v1/dashboard", headers=fb).json()
        assert d["decisions"] == 60 and d["explored"] + d["exploited"] == 60 and d["reports_in_window"] == 48
        assert d["settings"]["read_only"] is True and d["settings"]["policy"] == "hier_ucb"
        assert [b["config"] for b in d["best"][:3]] == [e.config.to_dict() for e in writer.best(3)]
        assert sum(v["count"] for v in d["arms"]["top_k"]["values"]) == 48
        if policy == "online":
            from autorag_hp.decision import Decision

            explored = sum(bool(Decision.from_info(t.info).policy.get("explore")) for t in writer.trials())
            assert d["pipeline_tag"] == "faq-v1" and d["explore_cap"] == 0.5 and d["explored"] == explored
        else:
            assert d["explored"] == 60  # the inner policy's own choices (explore=1 passes every decision to it)
        page = http.get("/v1/trials?state=pending", headers=admin).json()["trials"]
        assert len(page) == 12 and http.get("/healthz").json()["replica"] == "read-only"
        # no write route exists; the chat endpoint neither
        for path, body in (("/v1/ask", {"question": "x"}), ("/v1/feedback", {"trial_id": page[0]["trial_id"],
                                                                               "reward": 1.0}),
                           ("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "x"}]})):
            assert http.post(path, json=body, headers=admin).status_code in (404, 405), path
        assert not [p for p, ops in app.openapi()["paths"].items() if set(ops) - {"get"}]
        assert stored(writer.storage) == before
        writer.report(writer.suggest(owner="web").id, 0.5)  # the view follows a study that is still being written
        d = http.get("/v1/dashboard", headers=fb).json()
        assert d["decisions"] == 61 and d["reports_in_window"] == 49


@pytest.mark.postgres
def test_view_reads_a_postgres_study(pg_url, unique_name):
    from autorag_hp.service.readonly import StudyView

    writer = make_study(pg_url, n=20, study=unique_name)
    before = stored(writer.storage, unique_name)
    view = StudyView(pg_url, unique_name)
    d = view.dashboard(view.keys.lookup(None))
    assert d["decisions"] == 20 and d["reports_in_window"] == 16
    assert [b["config"] for b in d["best"][:3]] == [e.config.to_dict() for e in writer.best(3)]
    view.close()
    assert stored(writer.storage, unique_name) == before


def test_view_loads_no_pipeline_model_or_index(tmp_path):
    make_study(tmp_path / "s.db", n=10)
    code = ("import sys; from autorag_hp.service.readonly import StudyView; from autorag_hp.service.app import create_app;"
            f"v = StudyView('sqlite:///{tmp_path / 's.db'}', 'online'); create_app(v.settings, controller=v, read_only=True);"
            "print([m for m in ('torch', 'transformers', 'sentence_transformers', 'faiss', 'autorag_hp.rag.pipeline')"
            " if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_dashboard_command_refuses_clearly(tmp_path, capsys):
    from autorag_hp.cli import main

    assert main(["dashboard", "--storage", f"sqlite:///{tmp_path / 'missing.db'}"]) == 2
    assert "no SQLite database" in capsys.readouterr().err
    from autorag_hp import Tuner

    writer = make_study(tmp_path / "s.db", n=5)
    Tuner(SPACE, storage=writer.storage, study="other").close()
    assert main(["dashboard", "--storage", f"sqlite:///{tmp_path / 's.db'}"]) == 2
    assert "holds 2 studies (online, other); pick one with --study" in capsys.readouterr().err
    assert main(["dashboard", "--storage", f"sqlite:///{tmp_path / 's.db'}", "--study", "nope"]) == 2
    assert "no study named 'nope'" in capsys.readouterr().err
    assert main(["dashboard", "--storage", f"sqlite:///{tmp_path / 's.db'}", "--host", "0.0.0.0"]) == 2
    assert "give --keys FILE" in capsys.readouterr().err


def test_dashboard_command_renders_in_headless_chromium(tmp_path):
    binary = chromium_binary()
    if binary is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium); the dashboard test needs it")
    import httpx

    from autorag_hp.service.process import free_port

    writer = make_study(tmp_path / "s.db")
    before = stored(writer.storage)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "dashboard.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "autorag_hp.cli", "dashboard", "--storage",
                             f"sqlite:///{tmp_path / 's.db'}", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "dashboard.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "autorag-hp dashboard did not answer /healthz within 60 s"
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        html, _ = render(binary, url + "/", tmp_path / "dashboard_readonly.png")
        assert 'data-ready="1"' in html and 'data-mode="read-only"' in html, html[-3000:]
        assert "read-only view of a stored study" in html and "study online" in html
        assert 'data-param="chunk_size"' in html and 'data-param="top_k"' in html
        best_rows = re.search(r'<table id="best">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
        assert best_rows.count("<tr>") >= 3 and "no rewards yet" not in best_rows
        chart = re.search(r'<svg id="chart"[^>]*>(.*?)</svg>', html, re.S).group(1)
        assert chart.count("<circle") >= 2
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()
    assert stored(writer.storage) == before
