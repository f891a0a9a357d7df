"""additive_lucb2's decisions are a fixed function of its seed and events: a recorded run (made at commit da9ed17,
before the cost work of issue 18 §1) is replayed decision by decision, on the exact path (a small space, with
pairs entering), the searched path with pair groups, and the 20,000-configuration path with the race's shortlist.

Scores are rounded to 1e-9 before any comparison and ties are broken by the decision's own generator, so a change
in the rounding of the incremental algebra (or another CPU's BLAS) does not change a decision.

Regenerate (only when a decision is *meant* to change): ``python tests/test_policies_v2_decisions.py``.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from autorag_hp.decision import Decision
from autorag_hp.evaluation.replay import SyntheticTable, question_stream
from autorag_hp.policies import make_policy
from autorag_hp.space import SearchSpace

DATA = os.path.join(os.path.dirname(__file__), "data", "additive_lucb2_decisions.json")
SMALL = {"chunk_size": [256, 512, 1024], "top_k": [1, 3, 5], "embedding": ["bm25", "minilm", "e5"],
         "prompt": ["concise", "cite", "stepwise"], "temperature": [0.0, 0.7]}
# name: (space radix or dict, table seed, effect, interaction, needle, questions, w, decisions)
SCENARIOS = {
    "small_pairs": (SMALL, 1000, 0.5, 0.5, False, 100, 0.9, 810),
    "small_needle": (SMALL, 1001, 0.5, 0.05, True, 100, 0.9, 810),
    "searched_pairs": ([8, 8, 6, 5], 1002, 0.5, 0.5, False, 20, 0.5, 1000),
    "large_shortlist": ([10, 10, 10, 20], 1003, 0.5, 0.05, False, 10, 0.5, 1800),
}


def run(name: str) -> dict:
    """Drive the policy as the replay does (B = 4, the reward of each (configuration, question) cell, the
    question named): the index of every decision, the pairs the model let in, the deployed top 5."""
    spec, seed, effect, inter, needle, questions, w, decisions = SCENARIOS[name]
    space = SearchSpace(spec if isinstance(spec, dict) else {f"p{j}": list(range(n)) for j, n in enumerate(spec)})
    table = SyntheticTable.make(space, seed=seed, effect=effect, interaction=inter)
    if needle:
        table = table.with_needle(lift=0.5)
    R = table.replay_table(questions).reward_matrix(w)
    pol = make_policy("additive_lucb2", space, seed=seed)
    stream = question_stream(questions, decisions * 4, seed)
    picks = []
    for t in range(decisions):
        sel = pol.select()
        i = space.index(sel.config)
        picks.append(i)
        d = Decision(number=pol.t, slot=0, batch=4, policy=sel.info)
        pol.observe_decision(sel.config, d)
        for q in stream[4 * t:4 * t + 4].tolist():
            pol.update(sel.config, float(R[i, q]), 0.25, d.asking(q))
    top = np.argsort(-np.round(pol.recommendation_scores(None), 9), kind="stable")[:5]
    return {"picks": picks, "pairs": pol.state_dict()["extra"]["pairs"], "top5": top.tolist()}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_decisions_are_those_recorded(name):
    want = json.load(open(DATA))[name]
    got = run(name)
    first = next((t for t, (a, b) in enumerate(zip(got["picks"], want["picks"])) if a != b), None)
    assert first is None, f"decision {first} differs: {got['picks'][first]} instead of {want['picks'][first]}"
    assert got["pairs"] == want["pairs"]
    assert got["top5"] == want["top5"]


if __name__ == "__main__":
    out = {name: run(name) for name in SCENARIOS}
    with open(DATA, "w", encoding="utf-8") as f:
        json.dump(out, f, separators=(",", ":"))
    for name, r in out.items():
        print(name, len(set(r["picks"])), "distinct of", len(r["picks"]), "pairs", r["pairs"], "top5", r["top5"])


@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_pair_without_jitter_is_the_jittered_pair(k):
    """lucb_pair skips the jitter only when it cannot change the answer: on scores with many exact ties and
    near-ties (rounded to 1e-9, as the policy rounds them) it returns what the always-jittered sort returns."""
    from autorag_hp.policies.lucb_pair import lucb_pair

    for trial in range(300):
        gen = np.random.default_rng(trial)
        n = int(gen.integers(k + 1, 40))
        mean = np.round(gen.integers(0, 6, n) / 5 + gen.choice([0.0, 1e-9], n), 9)
        sd = np.round(gen.choice([0.1, 0.2, 0.3], n), 9)
        beta = float(gen.choice([1.0, 0.5, 1.3]))
        jitter = np.random.default_rng([trial, 1]).uniform(0.0, 1e-12, n)
        order = np.argsort(-(mean + jitter), kind="stable")
        inside, outside = order[:k], order[k:]
        lo = inside[int(np.argmin(mean[inside] - beta * sd[inside] + jitter[inside]))]
        hi = outside[int(np.argmax(mean[outside] + beta * sd[outside] + jitter[outside]))]
        assert lucb_pair(mean, sd, beta, k, np.random.default_rng([trial, 1])) == (lo, hi)
