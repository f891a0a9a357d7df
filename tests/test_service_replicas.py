"""Two real service replicas (uvicorn processes) on the local PostgreSQL share one study: asks and feedback
spread over both, feedback given to the other replica than the one that asked, duplicates refused: no report
lost, none counted twice, and both replicas fold the same decisions."""

from __future__ import annotations

import json
import random
import threading

import pytest

pytest.importorskip("fastapi")
pytestmark = pytest.mark.postgres

KEYS = {"clients": {"web": {"ask": "ask-web-0123456789", "feedback": "fb-web-0123456789"}},
        "admin": ["admin-0123456789ab"]}
ASK = {"Authorization": "Bearer ask-web-0123456789"}
FB = {"Authorization": "Bearer fb-web-0123456789"}


def serve_args(storage: str, study: str, keys_path) -> list[str]:
    return ["--pipeline", "python_docs_faq", "--generator", "extractive", "--set", "embedding=bm25",
            "--space", json.dumps({"chunk_size": [256, 512, 1024], "top_k": [1, 3, 5]}), "--storage", storage,
            "--study", study, "--keys", str(keys_path), "--explore", "0.5"]


def test_two_replicas_on_postgres_lose_nothing_and_count_nothing_twice(pg_url, unique_name, tmp_path):
    import httpx

    from autorag_hp.service.process import Replica
    from autorag_hp.storage.sql import SQLStorage

    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(KEYS))
    args = serve_args(pg_url, unique_name, keys)
    reps = [Replica(args, log=tmp_path / f"r{i}.log", name=f"r{i}") for i in range(2)]
    try:
        for r in reps:  # start both, then wait: the two start-ups overlap
            r.launch()
        for r in reps:
            r.wait_healthy(120)

        ok: dict[str, float] = {}
        dup_status: list[int] = []
        asked = []
        lock = threading.Lock()
        errors: list[str] = []

        def worker(w: int) -> None:
            rng = random.Random(w)
            with httpx.Client(timeout=30) as http:
                for i in range(12):
                    a, b = reps[(w + i) % 2], reps[(w + i + 1) % 2]
                    r = http.post(a.url + "/v1/ask", json={"question": f"How do I copy a file? ({w}/{i})"}, headers=ASK)
                    if r.status_code != 200:
                        errors.append(r.text)
                        continue
                    tid = r.json()["trial_id"]
                    with lock:
                        asked.append(tid)
                    if i % 4 == 3:
                        continue  # never answered: stays pending, blocks nothing
                    value = round(rng.uniform(-1, 1), 3)
                    r = http.post(b.url + "/v1/feedback", json={"trial_id": tid, "reward": value}, headers=FB)
                    if r.status_code == 200:
                        with lock:
                            ok[tid.split(".")[0]] = value
                    else:
                        errors.append(r.text)
                    if i % 3 == 0:  # a client retrying on the other replica: refused, counted once
                        d = http.post(a.url + "/v1/feedback", json={"trial_id": tid, "reward": 1.0}, headers=FB)
                        with lock:
                            dup_status.append(d.status_code)

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors[:3]
        assert len(asked) == 96 and len(ok) == 72
        assert dup_status and set(dup_status) == {409}

        st = SQLStorage(pg_url)
        try:
            for tid, value in ok.items():
                rec = st.trial(unique_name, tid)
                assert rec.state == "reported" and rec.reward == pytest.approx(value)
            stats = st.stats(unique_name)
            assert sum(s.count for s in stats.values()) == len(ok)
            assert sum(s.sum for s in stats.values()) == pytest.approx(sum(ok.values()))
            assert len(st.trials(unique_name, "pending")) == 96 - 72
        finally:
            st.close()
        # both replicas fold the same shared log: the same decisions, the same best (each applied the events in
        # the order it saw them, so sums agree to rounding only)
        views = [httpx.get(r.url + "/v1/dashboard", headers=FB, timeout=30).json() for r in reps]
        assert views[0]["decisions"] == views[1]["decisions"] == 96
        assert views[0]["explored"] == views[1]["explored"]
        a, b = views[0]["best"], views[1]["best"]
        assert [(r["config"], r["count"]) for r in a] == [(r["config"], r["count"]) for r in b]
        assert [r["mean"] for r in a] == pytest.approx([r["mean"] for r in b])
        assert views[0]["current_best"] == views[1]["current_best"]
    finally:
        for r in reps:
            r.stop()
