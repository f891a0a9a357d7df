"""The live check: tune on the live pipeline through a real Tuner and score the outcome against the table's grid."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from autorag_hp.evaluation.replay.loop import question_stream
from autorag_hp.evaluation.replay.table import ReplayTable
from autorag_hp.evaluation.replay.truth import grid_scores, recall_at
from autorag_hp.evaluation.stats import normalized_regret


def live_run(
    pipeline: Any,
    table: ReplayTable,
    policy: str,
    reward: Any,
    *,
    budget_calls: int,
    batch: int = 4,
    seed: int = 0,
    ks: Sequence[int] = (3, 5),
    rule: str = "policy",
    progress: bool = False,
) -> dict[str, float]:
    """Tune on the *live* pipeline (not the table) through a real :class:`Tuner`, on the table's questions in
    the replay's question order, and score the outcome against the table's grid.

    Every call runs the pipeline (retrieve → prompt → generate), computes the reward's metrics and reports
    the reward. Returns served reward, Recall@k of ``tuner.best`` against the table's grid scores, the
    deployed configuration's grid score (``best(1)`` under ``rule``, as in :func:`replay`), and ``agree``: the share of calls whose live reward equals the
    table's cell (1.0 for a deterministic pipeline; lower with sampling, e.g. temperature 0.7).
    """
    from autorag_hp.evaluation.grid.plan import question_id
    from autorag_hp.evaluation.rewards import as_reward
    from autorag_hp.tuner import Tuner

    reward = as_reward(reward)
    R = table.reward_matrix(reward)
    scores = grid_scores(R)
    items = {question_id(q): q for q in pipeline.questions()}
    missing = [q for q in table.questions if q not in items]
    if missing:
        raise ValueError(f"{len(missing)} table questions are not among the pipeline's questions (e.g. {missing[0]!r})")
    qs = [items[q] for q in table.questions]
    stream = question_stream(len(qs), budget_calls, seed)
    tuner = Tuner(table.space, policy=policy, seed=seed, batch_size=batch)
    served, agree = [], 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=budget_calls, desc=f"live {policy}", unit="call")
    for call in range(budget_calls):
        item = qs[int(stream[call])]
        trial = tuner.suggest(question=str(int(stream[call])))
        answer = pipeline.run(item.question, trial.config)
        r = float(reward.from_answer(answer, item))
        agree += abs(r - R[table.space.index(trial.config), int(stream[call])]) < 1e-9
        served.append(r)
        tuner.report(trial.id, r)
        if bar:
            bar.update()
    if bar:
        bar.close()
    top = [table.space.index(row.config) for row in tuner.best(max(ks), rule=rule)]
    out = {f"recall@{k}": recall_at(top, scores, k) for k in ks}
    out.update({"served": float(np.mean(served)), "deployed": float(scores[top[0]]),
                "regret": normalized_regret(scores, top[0]), "agree": agree / budget_calls, "calls": float(budget_calls)})
    return out
