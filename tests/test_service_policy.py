"""Control of exploration for live traffic: the exploration cap, the pinned fallback, discounting for drift,
and continue-vs-reset on a pipeline change (the ``online`` policy and the service controller)."""

from __future__ import annotations

import pytest

from autorag_hp import SearchSpace, Tuner
from autorag_hp.policies import make_policy

SPACE = SearchSpace({"top_k": [1, 3, 5], "prompt": ["concise", "cite"]})
TRUE = {(1, "concise"): -0.5, (3, "concise"): 0.2, (5, "concise"): 0.0, (1, "cite"): -0.2, (3, "cite"): 0.6,
        (5, "cite"): 0.1}


def reward(cfg, shift=False):
    v = TRUE[(cfg["top_k"], cfg["prompt"])]
    return -v if shift else v


def test_exploration_cap_limits_the_share_and_serves_the_best():
    tuner = Tuner(SPACE, policy="online", seed=3, policy_params={"inner": "hier_ucb", "explore": 0.2, "min_count": 2})
    explored = 0
    for _ in range(600):
        tr = tuner.suggest()
        explored += bool(tr.info["explore"])
        if not tr.info["explore"] and tuner.policy.best_config() is not None:
            assert tr.config == tuner.policy.best_config() or tr.decision < 10
        tuner.report(tr.id, reward(tr.config))
    share = explored / 600
    assert 0.15 <= share <= 0.25, share
    assert tuner.policy.explore_share == pytest.approx(share)
    # exploitation ends on the true best, and serves it to (nearly) all of the non-exploring traffic
    assert tuner.policy.best_config().to_dict() == {"top_k": 3, "prompt": "cite"}


def test_explore_zero_with_fallback_serves_only_the_pinned_config():
    pinned = {"top_k": 5, "prompt": "concise"}
    tuner = Tuner(SPACE, policy="online", seed=0, policy_params={"explore": 0.0, "fallback": pinned})
    seen = set()
    for _ in range(30):
        tr = tuner.suggest()
        seen.add(tr.config)
        assert tr.info["explore"] is False
        tuner.report(tr.id, reward(tr.config))
    assert {c.to_dict()["top_k"] for c in seen} == {5}


def test_fallback_is_displaced_only_by_a_better_configuration():
    pinned = {"top_k": 5, "prompt": "concise"}  # true mean 0.0; the best is (3, cite) at 0.6
    tuner = Tuner(SPACE, policy="online", seed=1,
                  policy_params={"explore": 0.3, "fallback": pinned, "min_count": 3})
    served_best = 0
    for i in range(400):
        tr = tuner.suggest()
        if i >= 300 and not tr.info["explore"]:
            served_best += tr.config.to_dict() == {"top_k": 3, "prompt": "cite"}
        tuner.report(tr.id, reward(tr.config))
    assert tuner.policy.best_config().to_dict() == {"top_k": 3, "prompt": "cite"}
    assert served_best > 50


def test_online_policy_rejects_bad_parameters():
    for bad in ({"explore": 1.5}, {"discount": 0.0}, {"min_count": 0}, {"inner": "online"},
                {"fallback": {"top_k": 4, "prompt": "cite"}}):
        with pytest.raises(ValueError):
            make_policy("online", SPACE, seed=0, **bad)


def _adapt_after_shift(discount: float) -> int:
    """Rewards flip sign after 300 reports; how many of the last 100 exploited decisions serve the new best?"""
    tuner = Tuner(SPACE, policy="online", seed=5,
                  policy_params={"explore": 0.3, "discount": discount, "min_count": 1.5})
    hits = 0
    for i in range(600):
        tr = tuner.suggest()
        if i >= 500 and not tr.info["explore"]:
            hits += tr.config.to_dict() == {"top_k": 1, "prompt": "concise"}  # best after the shift
        tuner.report(tr.id, reward(tr.config, shift=i >= 300))
    return hits


def test_discount_tracks_drifting_rewards_that_plain_statistics_miss():
    assert _adapt_after_shift(0.98) > 40
    assert _adapt_after_shift(1.0) < 10


def test_discounted_state_is_a_fold_a_reopened_tuner_continues_exactly(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    params = {"explore": 0.5, "discount": 0.95}
    a = Tuner(SPACE, policy="online", storage=url, seed=2, policy_params=params)
    for _ in range(50):
        tr = a.suggest()
        a.report(tr.id, reward(tr.config))
    b = Tuner(SPACE, policy="online", storage=url, seed=2, policy_params=params)
    assert b.state_dict() == a.state_dict()
    assert b.policy.best_config() == a.policy.best_config()


@pytest.fixture(scope="module")
def pipeline():
    from autorag_hp.rag import load_pipeline

    return load_pipeline("python_docs", generator="extractive")


def _controller(pipeline, url, tag, on_change):
    from autorag_hp.service.controller import Controller, ServiceSettings

    return Controller(ServiceSettings(storage=url, space={"top_k": [1, 3]}, config={"embedding": "bm25"},
                                      pipeline_tag=tag, on_change=on_change), pipeline=pipeline)


def test_pipeline_change_continue_keeps_state_reset_starts_fresh(pipeline, tmp_path):
    from autorag_hp.service.auth import Principal

    url = f"sqlite:///{tmp_path / 'c.db'}"
    who = Principal("admin", "admin")
    old = _controller(pipeline, url, "llm-v1", "continue")
    for _ in range(4):
        out = old.ask("How do I copy a file?", None, who)
        old.feedback(out["trial_id"], 0.5, who)
    old.close()
    cont = _controller(pipeline, url, "llm-v2", "continue")
    assert cont.study == "online" and cont.policy.t == 4
    assert sum(s.count for s in cont.tuner.storage.stats(cont.study).values()) == 4
    out = cont.ask("How do I copy a file?", None, who)
    assert cont.tuner.trial(out["trial_id"].split(".")[0]).info["pipeline"] == "llm-v2"
    cont.close()
    reset = _controller(pipeline, url, "llm-v2", "reset")
    assert reset.study == "online@llm-v2" and reset.policy.t == 0 and reset.best() == []
    assert "online" in reset.tuner.storage.studies()  # the old study stays readable
    reset.close()


def test_warm_builds_only_the_indexes_the_served_space_needs(pipeline, tmp_path):
    from autorag_hp.service.controller import Controller, ServiceSettings

    ctl = Controller(ServiceSettings(storage=f"sqlite:///{tmp_path / 'w.db'}", space={"chunk_size": [256, 512]},
                                     config={"embedding": "bm25"}, warm=True), pipeline=pipeline)
    assert [k[::2] for k in ctl.warm_indexes()] == [(256, "bm25"), (512, "bm25")]
    ctl.close()
