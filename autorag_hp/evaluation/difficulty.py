"""How hard is a grid for a tuner? Gaps between the top configurations measured against per-question noise.

The AutoRAG-HP paper calls a setting easy, medium or hard by how well tuners recover grid search's top
configurations; it publishes no formula. We make that measurable from a grid table alone:

- ``r(c, q)``: the reward of configuration ``c`` on question ``q`` (e.g. the paper reward at weight ``w``);
  only questions every configuration answered are used (a balanced table).
- ``μ_c``: mean reward of ``c``; ``μ_(1) ≥ μ_(2) ≥ ...`` sorted.
- ``σ``: per-question noise, the pooled within-configuration standard deviation of ``r(c, q)`` over ``q``.
- ``n_b = budget_fraction · Q``: questions a tuner can afford per configuration on average when it spends
  ``budget_fraction`` of grid search's LLM calls (the paper: ≈ 20 %), and ``se = σ / √n_b``.
- ``ρ = (μ_(1) − μ_(2·top)) / se``: how many standard errors separate the best configuration from the
  ``2·top``-th (the 10th for top = 5). ``easy`` when ``ρ ≥ 4``, ``medium`` when ``2 ≤ ρ < 4``, ``hard`` below.
- ``contenders``: configurations whose mean lies within one ``se`` of the ``top``-th best — the ones a tuner
  with that budget cannot tell apart at the top-``top`` boundary.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def reward_matrix(rows: Iterable[Mapping[str, Any]], reward) -> tuple[dict[str, dict], list[str], dict[str, list[float]]]:
    """(configs by id, the questions every config answered, rewards per config in that question order)."""
    by_cfg: dict[str, dict[str, float]] = {}
    configs: dict[str, dict] = {}
    for r in rows:
        row = {**r["metrics"], "total_tokens": r["prompt_tokens"] + r["completion_tokens"], "latency_s": r["latency_s"]}
        by_cfg.setdefault(r["config_id"], {})[r["question_id"]] = reward(row)
        configs[r["config_id"]] = r["config"]
    if not by_cfg:
        return {}, [], {}
    common = set.intersection(*(set(v) for v in by_cfg.values()))
    qids = sorted(common)
    return configs, qids, {c: [v[q] for q in qids] for c, v in by_cfg.items()}


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def difficulty(rows: Iterable[Mapping[str, Any]], reward, *, top: int = 5, budget_fraction: float = 0.2) -> dict:
    """Separation of the top configurations relative to per-question noise, and its easy/medium/hard label."""
    configs, qids, mat = reward_matrix(rows, reward)
    n_q = len(qids)
    if n_q < 2 or len(mat) < 2 * top:
        return {"questions": n_q, "configs": len(mat), "label": "n/a (too few complete questions/configs)"}
    means = {c: _mean(v) for c, v in mat.items()}
    var = [sum((x - means[c]) ** 2 for x in v) / (n_q - 1) for c, v in mat.items()]
    sigma = math.sqrt(_mean(var))
    order = sorted(means, key=lambda c: (-means[c], c))
    n_b = max(1.0, budget_fraction * n_q)
    se = sigma / math.sqrt(n_b) if sigma > 0 else 1e-12
    gap = means[order[0]] - means[order[min(2 * top, len(order)) - 1]]
    rho = gap / se
    boundary = means[order[top - 1]]
    contenders = sum(1 for c in order if abs(means[c] - boundary) <= se)
    label = "easy" if rho >= 4 else "medium" if rho >= 2 else "hard"
    return {
        "questions": n_q, "configs": len(mat), "sigma_per_question": sigma, "budget_questions_per_config": n_b,
        "se": se, "top_n": top, "gap": gap, "rho": rho, "contenders": contenders, "label": label,
        "top": [{"config": configs[c], "mean_reward": means[c]} for c in order[:top]],
    }


def report(rows: list[Mapping[str, Any]], *, metric: str, threshold: float, ws: Sequence[float] = (0.1, 0.5, 0.9),
           t_max: float | None = None, top: int = 5, budget_fraction: float = 0.2) -> dict:
    """:func:`difficulty` of the paper reward for each ``w`` (``t_max`` default: the largest token count seen)."""
    from autorag_hp.evaluation.rewards import PaperReward

    if t_max is None:
        t_max = float(max((r["prompt_tokens"] + r["completion_tokens"] for r in rows), default=1) or 1)
    acc = [1.0 if (r["metrics"].get(metric) or 0.0) >= threshold else 0.0 for r in rows]
    out = {"metric": metric, "threshold": threshold, "t_max": t_max, "accuracy_rate": _mean(acc) if acc else None,
           "by_w": {}}
    for w in ws:
        out["by_w"][str(w)] = difficulty(rows, PaperReward(w=w, metric=metric, threshold=threshold, t_max=t_max),
                                         top=top, budget_fraction=budget_fraction)
    return out


def to_markdown(rep: dict, totals: Mapping[str, Any] | None = None,
                imported: Mapping[str, Any] | None = None) -> str:
    """``totals``: the table's (rows and LLM calls count every row; wall time and runs only this table's own
    runs); ``imported``: the totals of the runs whose rows were imported into it (``--import``), added to both."""
    lines = ["# Ground-truth grid: difficulty per reward weight", ""]
    if totals:
        from autorag_hp.evaluation.table import with_imported_runs

        t = with_imported_runs(totals, imported)
        lines += [f"- rows: {t.get('rows')}, LLM calls: {t.get('llm_calls')}, answers reused: "
                  f"{t.get('answers_reused')}, wall time: {t['wall_s'] / 3600:.2f} h over {t['runs']} run(s)", ""]
    top_n = next((d["top_n"] for d in rep["by_w"].values() if "top_n" in d), 5)
    lines += [f"Reward: paper `w·acc − (1−w)·tokens/t_max`, acc = `{rep['metric']} ≥ {rep['threshold']}` "
              f"(rate {rep['accuracy_rate']:.3f}), t_max = {rep['t_max']:.0f}.", "",
              f"| w | questions | configs | σ per question | se at 20 % budget | best − {2 * top_n}th | ρ "
              f"| contenders at top-{top_n} | label |",
              "|---|---|---|---|---|---|---|---|---|"]
    for w, d in rep["by_w"].items():
        if "rho" not in d:
            lines.append(f"| {w} | {d['questions']} | {d['configs']} | | | | | | {d['label']} |")
            continue
        lines.append(f"| {w} | {d['questions']} | {d['configs']} | {d['sigma_per_question']:.3f} | {d['se']:.3f} | "
                     f"{d['gap']:.3f} | {d['rho']:.2f} | {d['contenders']} | **{d['label']}** |")
    lines.append("")
    for w, d in rep["by_w"].items():
        if "top" in d:
            lines.append(f"Top configurations at w = {w}:")
            lines += [f"{i + 1}. `{t['config']}` mean reward {t['mean_reward']:.3f}" for i, t in enumerate(d["top"])]
            lines.append("")
    lines.append(f"Definitions: see `autorag_hp/evaluation/difficulty.py` (ρ = (μ₁ − μ_{2 * top_n}) / (σ / √(b·Q)), "
                 "b = budget fraction; easy ρ ≥ 4, medium 2 ≤ ρ < 4, hard ρ < 2).")
    return "\n".join(lines) + "\n"
