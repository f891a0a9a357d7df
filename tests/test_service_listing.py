"""The service's trial listings: ``/v1/trials`` pages by keyset (``?after=``), and a feedback key sees its own
client's trials only (there and in the dashboard's trial data), while the admin key sees every client's."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

SPACE = {"chunk_size": [256, 512], "top_k": [1, 3, 5]}
KEYS = {
    "clients": {"web": {"ask": "ask-web-0123456789", "feedback": "fb-web-0123456789"},
                "bot": {"ask": "ask-bot-0123456789", "feedback": "fb-bot-0123456789"}},
    "admin": ["admin-0123456789ab"],
}
ASK = {"web": {"Authorization": "Bearer ask-web-0123456789"}, "bot": {"Authorization": "Bearer ask-bot-0123456789"}}
FB = {"web": {"Authorization": "Bearer fb-web-0123456789"}, "bot": {"Authorization": "Bearer fb-bot-0123456789"}}
ADMIN = {"X-API-Key": "admin-0123456789ab"}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """One service with 7 trials asked by web and 5 by bot; web reported 4 of its own, bot 2."""
    from fastapi.testclient import TestClient

    from autorag_hp.rag import load_pipeline
    from autorag_hp.service.app import create_app
    from autorag_hp.service.auth import KeyRing
    from autorag_hp.service.controller import ServiceSettings

    pipeline = load_pipeline("python_docs_faq", generator="extractive")
    db = tmp_path_factory.mktemp("listing") / "svc.db"
    settings = ServiceSettings(storage=f"sqlite:///{db}", generator="extractive", space=SPACE,
                               config={"embedding": "bm25"})
    client = TestClient(create_app(settings, KeyRing.from_mapping(KEYS), pipeline=pipeline))
    asked: dict[str, list[str]] = {"web": [], "bot": []}
    with client:
        for i in range(12):
            who = "web" if i < 7 else "bot"
            r = client.post("/v1/ask", json={"question": f"How do I copy a file in Python? ({i})"}, headers=ASK[who])
            assert r.status_code == 200, r.text
            asked[who].append(r.json()["trial_id"])
        for who, n in (("web", 4), ("bot", 2)):
            for ticket in asked[who][:n]:
                r = client.post("/v1/feedback", json={"trial_id": ticket, "reward": 0.5}, headers=FB[who])
                assert r.status_code == 200, r.text
        yield client, {w: [t.split(".")[0] for t in ts] for w, ts in asked.items()}


def pages(client, headers, **params):
    """Every page of /v1/trials with these filters, following ``next``."""
    out, seen = [], 0
    cursor = None
    while True:
        q = {**params, **({"after": cursor} if cursor else {})}
        body = client.get("/v1/trials", params=q, headers=headers).json()
        out += [t["trial_id"] for t in body["trials"]]
        seen += 1
        cursor = body["next"]
        if cursor is None:
            return out, seen


def test_a_feedback_key_lists_its_own_trials_only_and_the_admin_all(service):
    client, asked = service
    for who in ("web", "bot"):
        got, _ = pages(client, FB[who], limit=1000)
        assert got == asked[who][::-1]  # newest first, only this client's
        assert not set(got) & set(asked["bot" if who == "web" else "web"])
    everything, _ = pages(client, ADMIN, limit=1000)
    assert sorted(everything) == sorted(asked["web"] + asked["bot"]) and len(everything) == 12
    reported = client.get("/v1/trials", params={"state": "reported"}, headers=FB["web"]).json()["trials"]
    assert [t["trial_id"] for t in reported] == asked["web"][:4][::-1]
    assert all(t["reward"] == 0.5 and t["state"] == "reported" for t in reported)
    pending = client.get("/v1/trials", params={"state": "pending"}, headers=FB["bot"]).json()["trials"]
    assert [t["trial_id"] for t in pending] == asked["bot"][2:][::-1]


def test_trials_page_by_keyset_in_either_order(service):
    client, asked = service
    newest, n_pages = pages(client, FB["web"], limit=3)
    assert newest == asked["web"][::-1] and n_pages == 3
    oldest, _ = pages(client, FB["web"], limit=2, order="oldest")
    assert oldest == asked["web"]
    first = client.get("/v1/trials", params={"limit": 5}, headers=ADMIN).json()
    assert len(first["trials"]) == 5 and first["next"].isdigit()
    rest = client.get("/v1/trials", params={"limit": 100, "after": first["next"]}, headers=ADMIN).json()
    assert len(rest["trials"]) == 7 and rest["next"] is None
    assert not {t["trial_id"] for t in first["trials"]} & {t["trial_id"] for t in rest["trials"]}
    for bad in ({"after": "abc"}, {"after": "-1"}, {"order": "sideways"}, {"limit": 0}, {"limit": 1001}):
        r = client.get("/v1/trials", params=bad, headers=ADMIN)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", bad
    assert client.get("/v1/trials", headers=ASK["web"]).status_code == 403
    assert client.get("/v1/trials").status_code == 401


def test_the_dashboard_draws_a_clients_own_trials_and_the_studys_statistics(service):
    client, _ = service
    mine = {w: client.get("/v1/dashboard", headers=FB[w]).json() for w in ("web", "bot")}
    every = client.get("/v1/dashboard", headers=ADMIN).json()
    assert mine["web"]["reports_in_window"] == 4 and mine["bot"]["reports_in_window"] == 2
    assert every["reports_in_window"] == 6
    assert sum(b["count"] for b in mine["web"]["reward_over_time"]) == 4
    assert sum(b["count"] for b in every["reward_over_time"]) == 6
    # the learned statistics are the study's, the same for every key (as /v1/best and /v1/arms show them)
    assert mine["web"]["best"] == mine["bot"]["best"] == every["best"] and every["decisions"] == 12
