"""What the in-process service tests share: the keys, the space, a test client over a real app with the
extractive pipeline (the ``pipeline`` fixture in conftest.py) and real SQLite, a settable clock, and a fingerprint of what is stored."""

from __future__ import annotations

SPACE = {"chunk_size": [256, 512], "top_k": [1, 3, 5]}
FIXED = {"embedding": "bm25"}
KEYS = {
    "clients": {"web": {"ask": "ask-web-0123456789", "feedback": "fb-web-0123456789", "score": "score-web-0123456789"},
                "bot": {"ask": "ask-bot-0123456789", "feedback": "fb-bot-0123456789"}},
    "admin": ["admin-0123456789ab"],
}
ASK = {"Authorization": "Bearer ask-web-0123456789"}
FB = {"Authorization": "Bearer fb-web-0123456789"}
SCORE = {"Authorization": "Bearer score-web-0123456789"}
ASK_BOT = {"Authorization": "Bearer ask-bot-0123456789"}
FB_BOT = {"Authorization": "Bearer fb-bot-0123456789"}
ADMIN = {"X-API-Key": "admin-0123456789ab"}
Q = "How do I copy a file in Python?"


class Clock:
    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_client(pipeline, tmp_path, clock=None, raise_server_exceptions=True, **overrides):
    from fastapi.testclient import TestClient

    from autorag_hp.service.app import create_app
    from autorag_hp.service.auth import KeyRing
    from autorag_hp.service.controller import ServiceSettings

    kw = {"storage": f"sqlite:///{tmp_path / 'svc.db'}", "generator": "extractive", "space": SPACE, "config": FIXED,
          **overrides}
    app = create_app(ServiceSettings(**kw), KeyRing.from_mapping(KEYS), pipeline=pipeline,
                     **({"clock": clock} if clock else {}))
    return TestClient(app, raise_server_exceptions=raise_server_exceptions), app.state.controller


def snapshot(ctl):
    st = ctl.tuner.storage
    return (len(st.events(ctl.study)), {k: (v.count, v.sum) for k, v in st.stats(ctl.study).items()},
            [(t.trial_id, t.state, t.reward) for t in st.trials(ctl.study)])
