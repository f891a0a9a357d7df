"""The replay loop: one policy played against a reward matrix on a question stream, measured at checkpoints."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from autorag_hp.decision import Decision
from autorag_hp.evaluation.replay.truth import grid_scores, recall_at
from autorag_hp.evaluation.stats import normalized_regret
from autorag_hp.space import SearchSpace

DEFAULT_FRACTIONS: tuple[float, ...] = tuple(round(0.01 * i, 2) for i in range(1, 101))


def question_stream(n_questions: int, length: int, seed: int) -> np.ndarray:
    """Question indices in a new random order per seed, re-shuffled at each pass over the questions."""
    rng = np.random.default_rng([seed, 20240628])
    passes = -(-length // n_questions)
    return np.concatenate([rng.permutation(n_questions) for _ in range(passes)])[:length]


def _checkpoints(grid_calls: int, fractions: Sequence[float]) -> np.ndarray:
    return np.array([max(1, int(math.ceil(f * grid_calls - 1e-9))) for f in fractions])


def replay(
    R: np.ndarray,
    space: SearchSpace,
    policy: str | Callable[[SearchSpace, int], Any],
    *,
    batch: int = 4,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    ks: Sequence[int] = (3, 5),
    rule: str = "policy",
    policy_params: Mapping[str, Any] | None = None,
    truth: np.ndarray | None = None,
    stale: int = 0,
) -> dict[str, np.ndarray]:
    """Play one policy (a registered name or ``factory(space, seed)``) on reward matrix ``R`` (C × Q).

    ``stale``: the policy decides from a state that lacks the rewards of its last ``stale`` decisions (they
    are credited ``stale`` decisions late; the decisions themselves count as pending at once): the view of a
    replica whose state lags the shared log by up to ``stale`` decisions (``stale × batch`` reports). 0: exact.

    ``truth``: the score of every configuration that the outcome is judged by (default: grid's mean over
    the columns of ``R``; a held-out part of the questions, or a synthetic table's true means).

    Returns arrays over ``fractions`` (shares of the calls a grid over ``R`` pays): ``calls``, ``recall@k``
    per k (against ``truth``'s top k), ``served`` (mean reward served so far), ``deployed`` (``truth`` of the
    recommendation, ``best(1)`` under ``rule``) and ``regret`` (its normalized regret: 0 = the truly best
    configuration, 1 = a median one). A policy that runs out of suggestions (grid) stops; its later
    checkpoints repeat its final state.
    """
    from collections import deque

    from autorag_hp.ranking import check_rule, top_indices

    check_rule(rule)
    if isinstance(stale, bool) or not isinstance(stale, int) or stale < 0:
        raise ValueError(f"stale must be a whole number of decisions >= 0, got {stale!r}")
    C, Q = R.shape
    if C != space.size:
        raise ValueError(f"reward matrix has {C} rows but the space has {space.size} configurations")
    scores = grid_scores(R) if truth is None else np.asarray(truth, dtype=float)
    cps = _checkpoints(C * Q, fractions)
    if policy == "grid":
        return _replay_grid(R, scores, cps, seed, ks)
    from autorag_hp.policies import make_policy

    pol = make_policy(policy, space, seed=seed, **dict(policy_params or {})) if isinstance(policy, str) \
        else policy(space, seed)
    id_rank = space.id_rank()
    stream = question_stream(Q, int(cps[-1]) + batch, seed)
    kmax = max(ks)
    out = _outputs(cps, ks)
    index_of: dict[str, int] = {}
    w = 1.0 / batch
    calls, total, c = 0, 0.0, 0
    late: deque = deque()  # decisions whose rewards the policy has not seen yet (``stale``)
    while c < len(cps):
        if not pol.exhausted:
            sel = pol.select()
            cfg = sel.config
            i = index_of.get(cfg.id)
            if i is None:
                i = index_of[cfg.id] = space.index(cfg)
            decision = Decision(number=pol.t, slot=0, batch=batch, policy=sel.info)
            pol.observe_decision(cfg, decision)
            qs = stream[calls:calls + batch]
            rs = R[i, qs]
            late.append((cfg, decision, qs.tolist(), rs.tolist()))
            while len(late) > stale:
                d_cfg, d, d_qs, d_rs = late.popleft()
                for q, r in zip(d_qs, d_rs):  # the question names the cell: a revisit is no new sample
                    pol.update(d_cfg, r, w, d.asking(q))
            total += float(rs.sum())
            calls += batch
        exhausted = pol.exhausted
        while c < len(cps) and (calls >= cps[c] or exhausted):
            top = top_indices(space, pol.sample_stats(), kmax, rule, pol, id_rank)
            _record(out, c, top, scores, ks, total / calls if calls else float("nan"))
            c += 1
    return out


def _outputs(cps: np.ndarray, ks: Sequence[int]) -> dict[str, np.ndarray]:
    out = {f"recall@{k}": np.zeros(len(cps)) for k in ks}
    for name in ("served", "deployed", "regret"):
        out[name] = np.zeros(len(cps))
    out["calls"] = cps.astype(float)
    return out


def _record(out: dict[str, np.ndarray], c: int, top: np.ndarray, scores: np.ndarray, ks: Sequence[int],
            served: float) -> None:
    for k in ks:
        out[f"recall@{k}"][c] = recall_at(top, scores, k)
    out["served"][c] = served
    out["deployed"][c] = scores[top[0]] if len(top) else float("nan")
    out["regret"][c] = normalized_regret(scores, int(top[0])) if len(top) else float("nan")


def _replay_grid(R: np.ndarray, scores: np.ndarray, cps: np.ndarray, seed: int, ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Grid search on a question subsample: every configuration on the first ``calls / C`` stream questions
    (every configuration has the same number of samples, so every ranking rule orders them by mean)."""
    C, Q = R.shape
    stream = question_stream(Q, Q, seed)
    csum = np.cumsum(R[:, stream], axis=1)
    id_rank = np.arange(C)
    out = _outputs(cps, ks)
    for c, b in enumerate(cps):
        m = max(1, min(Q, int(b // C)))
        mean = csum[:, m - 1] / m
        top = np.lexsort((id_rank, -mean))[: max(ks)]
        _record(out, c, top, scores, ks, float(mean.mean()))
    return out
