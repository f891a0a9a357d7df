"""The dashboard page in a real headless Chromium (Debian's ``chromium`` package) against a real service process.

The rendered DOM is checked (arms with counts, means and intervals; reward over time; best configurations;
exploration share) and a screenshot is kept as a test artifact in ``$AUTORAG_HP_ARTIFACTS`` (default
``build/test-artifacts/``). Skips only when no Chromium binary is installed, and says so.
"""

from __future__ import annotations

import json
import re

import pytest
from browser_support import (  # the headless Chromium the page tests share
    chromium,
    chromium_binary,
    render,
)

pytest.importorskip("fastapi")

KEYS = {"clients": {"web": {"ask": "ask-web-0123456789", "feedback": "fb-web-0123456789", "score": "score-web-0123456789"}},
        "admin": ["admin-0123456789ab"]}
SCORE = {"Authorization": "Bearer score-web-0123456789"}  # asks; may send a reference for the service to score
FB = {"Authorization": "Bearer fb-web-0123456789"}


def seed_traffic(url: str, n: int = 40) -> None:
    import httpx

    from autorag_hp.rag.data import load_bundled_questions

    qs = load_bundled_questions("python_docs_faq")[:n]
    with httpx.Client(timeout=30) as http:
        for i, item in enumerate(qs):
            body = {"question": item.question, **({"reference": item.answer} if i % 2 == 0 else {})}
            r = http.post(url + "/v1/ask", json=body, headers=SCORE)
            assert r.status_code == 200, r.text
            if i % 2:
                thumbs = "up" if r.json()["config"]["top_k"] >= 3 else "down"
                http.post(url + "/v1/feedback", json={"trial_id": r.json()["trial_id"], "thumbs": thumbs}, headers=FB)


def test_dashboard_renders_in_headless_chromium(tmp_path):
    binary = chromium_binary()
    if binary is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium); the dashboard test needs it")
    from autorag_hp.service.process import Replica

    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(KEYS))
    # the FAQ slice (189 documents): the page shows the study, not the corpus, and its indexes build in a blink
    args = ["--pipeline", "python_docs_faq", "--generator", "extractive", "--set", "embedding=bm25",
            "--space", json.dumps({"chunk_size": [256, 512, 1024], "top_k": [1, 3, 5]}),
            "--storage", f"sqlite:///{tmp_path / 'dash.db'}", "--keys", str(keys), "--explore", "0.6"]
    with Replica(args, log=tmp_path / "serve.log", name="dash") as rep:
        seed_traffic(rep.url)
        page = f"{rep.url}/#key=fb-web-0123456789"
        html, _ = render(binary, page, tmp_path / "dashboard.png")
        assert 'data-ready="1"' in html, html[-3000:]
        assert 'data-param="chunk_size"' in html and 'data-param="top_k"' in html  # arms table rows
        assert "Exploitation serves:" in html  # best configurations section filled
        best_rows = re.search(r'<table id="best">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
        assert best_rows.count("<tr>") >= 3 and "no rewards yet" not in best_rows
        chart = re.search(r'<svg id="chart"[^>]*>(.*?)</svg>', html, re.S).group(1)
        assert chart.count("<circle") >= 2
        # without a key the page asks for one instead of showing data
        nokey = chromium(binary, "--dump-dom", rep.url + "/").stdout.decode("utf-8", "replace")
        assert 'data-ready="error"' in nokey and "give a feedback or admin key" in nokey
