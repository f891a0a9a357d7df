"""The library baselines of issue 18: Optuna's GPSampler as a policy replays deterministically and keeps the
policy contract; SMAC3's adapter spends at most the budget and deploys a configuration of the space."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from autorag_hp.evaluation.replay import SyntheticTable, replay
from autorag_hp.policies.optuna_gp import OptunaGPPolicy
from autorag_hp.space import SearchSpace

SPACE = SearchSpace({"a": [0, 1, 2], "b": [0, 1], "c": [0, 1, 2]})


@pytest.mark.slow
def test_gp_policy_replays_deterministically_and_restores():
    pytest.importorskip("torch")
    table = SyntheticTable.make(SPACE, seed=1)
    R = table.replay_table(12).reward_matrix(0.5)
    a = replay(R, SPACE, OptunaGPPolicy, batch=4, seed=2, fractions=[0.25], truth=table.expected_rewards(0.5))
    b = replay(R, SPACE, OptunaGPPolicy, batch=4, seed=2, fractions=[0.25], truth=table.expected_rewards(0.5))
    assert a["regret"][0] == b["regret"][0] and a["recall@5"][0] == b["recall@5"][0]
    pol = OptunaGPPolicy(SPACE, seed=0, n_startup_trials=2)
    for _ in range(4):
        sel = pol.select()
        pol.observe_decision(sel.config, sel.info)
        pol.update(sel.config, float(R[SPACE.index(sel.config)].mean()), 1.0, sel.info)
    twin = OptunaGPPolicy(SPACE, seed=0, n_startup_trials=2)
    twin.load_state_dict(pol.state_dict())
    assert pol.select().config == twin.select().config  # a GP ask, from the restored trials alone


@pytest.mark.slow
def test_smac_adapter_spends_at_most_the_budget():
    pytest.importorskip("smac")
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "eval", "scripts"))
    from smac_replay import smac_replay

    table = SyntheticTable.make(SPACE, seed=3)
    R = table.replay_table(10).reward_matrix(0.9)
    res = smac_replay(R, SPACE, 40, seed=0, truth=table.expected_rewards(0.9))
    assert 0 < res["calls"] <= 40
    assert 0.0 <= res["recall@5"] <= 1.0 and np.isfinite(res["regret"])
