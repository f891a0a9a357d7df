"""Reward formulas on hand-made rows, YAML declarations, and clear errors for bad specs."""

from __future__ import annotations

import pytest

from autorag_hp.evaluation.rewards import (
    CallableReward,
    FeedbackReward,
    InvalidRewardSpecError,
    LatencyPenalty,
    MissingValueError,
    PaperReward,
    WeightedSumReward,
    reward_from_spec,
)
from autorag_hp.specs import FOLDERS, bundled
from autorag_hp.types import Answer, Context, QAItem

REWARDS_DIR = FOLDERS["reward"]


@pytest.mark.parametrize(
    ("w", "metric_value", "tokens", "expected"),
    [
        (0.5, 1.0, 400, 0.5 * 1 - 0.5 * 0.4),
        (0.5, 0.0, 400, 0.5 * -1 - 0.5 * 0.4),
        (0.9, 0.7, 1000, 0.9 - 0.1),
        (0.1, 0.2, 0, -0.1),
        (1.0, 1.0, 5000, 1.0),
        (0.0, 1.0, 250, -0.25),
    ],
)
def test_paper_reward_formula(w, metric_value, tokens, expected):
    r = PaperReward(w=w, metric="token_f1", threshold=0.5, t_max=1000)
    assert r({"token_f1": metric_value, "total_tokens": tokens}) == pytest.approx(expected)


def test_paper_threshold_is_inclusive():
    r = PaperReward(w=1.0, metric="token_f1", threshold=0.5)
    assert r({"token_f1": 0.5, "total_tokens": 0}) == 1.0
    assert r({"token_f1": 0.4999, "total_tokens": 0}) == -1.0


@pytest.mark.parametrize("w", [-0.1, 1.5, float("nan"), "abc"])
def test_weight_outside_unit_interval_is_a_clear_error(w):
    with pytest.raises(InvalidRewardSpecError, match="w"):
        PaperReward(w=w)
    with pytest.raises(InvalidRewardSpecError):
        reward_from_spec({"type": "paper", "w": w})


def test_bad_specs():
    with pytest.raises(InvalidRewardSpecError, match="t_max"):
        PaperReward(w=0.5, t_max=0)
    with pytest.raises(InvalidRewardSpecError, match="no_such"):
        PaperReward(w=0.5, metric="no_such")
    with pytest.raises(InvalidRewardSpecError, match="unknown reward type 'nope'"):
        reward_from_spec({"type": "nope"})
    with pytest.raises(InvalidRewardSpecError, match="bad 'paper' reward spec"):
        reward_from_spec({"type": "paper", "w": 0.5, "colour": "red"})
    with pytest.raises(InvalidRewardSpecError, match="neither a file nor a bundled reward name.*python_docs_w0.5"):
        reward_from_spec("/nonexistent/reward.yaml")
    with pytest.raises(InvalidRewardSpecError, match="at least one"):
        WeightedSumReward({})
    with pytest.raises(InvalidRewardSpecError, match="per_second"):
        LatencyPenalty(per_second=-1)


def test_weighted_sum():
    r = WeightedSumReward({"token_f1": 0.5, "mrr": 0.5, "total_tokens": -0.001}, bias=0.1)
    assert r({"token_f1": 0.8, "mrr": 0.5, "total_tokens": 300}) == pytest.approx(0.1 + 0.4 + 0.25 - 0.3)


def test_missing_value_names_the_key():
    r = WeightedSumReward({"token_f1": 1.0})
    with pytest.raises(MissingValueError, match="token_f1.*not applicable"):
        r({"token_f1": None})
    with pytest.raises(MissingValueError, match="no such key"):
        r({})


def test_feedback_thumbs_and_stars():
    t = FeedbackReward("thumbs")
    assert [t.convert(v) for v in ("up", "down", True, False, 1, -1, "👍")] == [1, -1, 1, -1, 1, -1, 1]
    with pytest.raises(InvalidRewardSpecError):
        t.convert("sideways")
    s = FeedbackReward("stars")
    assert [s({"feedback": k}) for k in (1, 2, 3, 4, 5)] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    with pytest.raises(InvalidRewardSpecError, match="1 to 5"):
        s({"feedback": 6})
    with pytest.raises(MissingValueError):
        s({})
    with pytest.raises(InvalidRewardSpecError):
        FeedbackReward("emoji")


def test_latency_penalty():
    base = PaperReward(w=0.5, metric="exact_match", t_max=1000)
    r = LatencyPenalty(per_second=0.1, budget_s=2.0, base=base)
    row = {"exact_match": 1.0, "total_tokens": 200, "latency_s": 3.5}
    assert r(row) == pytest.approx(0.5 - 0.1 - 0.15)
    assert r({**row, "latency_s": 1.0}) == pytest.approx(0.4)
    assert LatencyPenalty(per_second=1.0)({"latency_s": 0.25}) == -0.25


def test_yaml_files_load_and_round_trip():
    files = sorted(REWARDS_DIR.glob("*.yaml"))
    assert len(files) >= 5
    for f in files:
        r = reward_from_spec(f)
        assert reward_from_spec(r.to_spec()) == r
    r = reward_from_spec(REWARDS_DIR / "paper_w0.9.yaml")
    assert isinstance(r, PaperReward) and r.w == 0.9
    lat = reward_from_spec(REWARDS_DIR / "paper_w0.5_latency.yaml")
    assert isinstance(lat.base, PaperReward)


def test_bundled_rewards_by_name_and_paths_relative_to_the_working_directory(tmp_path, monkeypatch):
    assert {"paper_w0.5", "python_docs_w0.5", "thumbs"} <= set(bundled("reward"))
    r = reward_from_spec("python_docs_w0.5")  # the dot is part of the name, not a suffix
    assert isinstance(r, PaperReward) and r.w == 0.5 and r.metric == "token_precision"
    assert reward_from_spec("python_docs_w0.5.yaml") == r
    # a file in the working directory wins over a bundled name
    monkeypatch.chdir(tmp_path)
    (tmp_path / "python_docs_w0.5").write_text("type: paper\nw: 0.25\n")
    assert reward_from_spec("python_docs_w0.5").w == 0.25
    (tmp_path / "mine.yaml").write_text("type: paper\nw: 0.75\n")
    assert reward_from_spec("mine.yaml").w == 0.75
    with pytest.raises(InvalidRewardSpecError, match="bundled rewards: paper_w0.1, "):
        reward_from_spec("eval/rewards/paper_w0.5.yaml")  # the old folder is gone: a path is never a name


def test_from_answer_computes_the_metrics():
    a = Answer("Guido van Rossum", contexts=(Context("faq/general.rst#1", "x"),), prompt_tokens=300,
               completion_tokens=100, latency_s=1.0)
    q = QAItem("who created python?", answer="guido van rossum")
    assert PaperReward(w=0.5, metric="exact_match", t_max=1000).from_answer(a, q) == pytest.approx(0.5 - 0.2)
    assert FeedbackReward("stars").from_answer(a, q, feedback=5) == 1.0
    c = CallableReward(lambda row: 2 * row["exact_match"], metrics=("exact_match",))
    assert c.from_answer(a, q) == 2.0


def test_available_mean_uses_the_metrics_a_question_has_and_the_defaults_are_declared_rewards():
    from autorag_hp.evaluation.rewards import (
        DEFAULT_OFFLINE_REWARD,
        DEFAULT_ONLINE_REWARD,
        AvailableMeanReward,
        MissingValueError,
    )

    r = reward_from_spec(DEFAULT_OFFLINE_REWARD)
    assert isinstance(r, AvailableMeanReward) and reward_from_spec(r.to_spec()) == r
    # both apply: (0.6 + 0.5) / 2 − 0.1 · 1000/2000 = 0.5; tokens are capped at t_max
    assert r({"token_f1": 0.6, "mrr": 0.5, "total_tokens": 1000}) == pytest.approx(0.5)
    assert r({"token_f1": 0.6, "mrr": None, "total_tokens": 9000}) == pytest.approx(0.5)  # no gold sources
    with pytest.raises(MissingValueError, match="reference answer or gold sources"):
        r({"token_f1": None, "mrr": None, "total_tokens": 10})
    with pytest.raises(InvalidRewardSpecError, match="t_max"):
        reward_from_spec({**DEFAULT_OFFLINE_REWARD, "t_max": 0})
    assert reward_from_spec(DEFAULT_ONLINE_REWARD)({"token_f1": 0.75}) == pytest.approx(0.5)
