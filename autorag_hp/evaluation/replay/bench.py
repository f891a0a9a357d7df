"""The benchmark: every method on every reward setting for many seeds, with grid's truth and noise ceiling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autorag_hp.evaluation.replay.loop import DEFAULT_FRACTIONS, replay
from autorag_hp.evaluation.replay.table import ReplayTable
from autorag_hp.evaluation.replay.truth import grid_scores


@dataclass
class BenchResult:
    """Per (method, setting): arrays of shape (seeds, checkpoints) for each measure, plus run times."""

    fractions: list[float]
    grid_calls: int
    settings: list[str]
    methods: list[str]
    runs: dict[tuple[str, str], dict[str, np.ndarray]]
    seconds: dict[tuple[str, str], float]
    truth: dict[str, dict[str, Any]]
    info: dict[str, Any] = field(default_factory=dict)

    def at(self, method: str, setting: str, measure: str, fraction: float) -> tuple[float, float]:
        """Mean and std over seeds of ``measure`` at the checkpoint nearest to ``fraction``."""
        j = int(np.argmin(np.abs(np.asarray(self.fractions) - fraction)))
        a = self.runs[(method, setting)][measure][:, j]
        if np.isnan(a).all():
            return float("nan"), float("nan")
        return float(a.mean()), float(a.std())

    def calls_to(self, method: str, setting: str, measure: str = "recall@5", level: float = 0.8) -> float:
        """Share of grid's calls at which the mean over seeds of ``measure`` first reaches ``level`` (NaN: never)."""
        curve = self.runs[(method, setting)][measure].mean(axis=0)
        hit = np.flatnonzero(np.nan_to_num(curve, nan=-np.inf) >= level - 1e-12)
        return float(self.fractions[hit[0]]) if hit.size else float("nan")

    def to_json(self) -> dict[str, Any]:
        def pack(a: np.ndarray) -> dict[str, list[float]]:
            return {"mean": [round(float(x), 5) for x in a.mean(axis=0)],
                    "std": [round(float(x), 5) for x in a.std(axis=0)]}

        return {
            "fractions": self.fractions, "grid_calls": self.grid_calls, "settings": self.settings,
            "methods": self.methods, "truth": self.truth, "info": self.info,
            "seconds": {f"{m}|{s}": round(t, 3) for (m, s), t in self.seconds.items()},
            "seeds_per_run": {f"{m}|{s}": int(d["served"].shape[0]) for (m, s), d in self.runs.items()},
            "runs": {f"{m}|{s}": {k: pack(v) for k, v in d.items() if k != "calls"} for (m, s), d in self.runs.items()},
        }


def split_method(method: str, rule: str = "policy") -> tuple[str, str]:
    """``"name@mean"`` / ``"name@lcb"`` / ... -> (policy name, ranking rule); a bare name gets ``rule``."""
    from autorag_hp.ranking import check_rule

    name, _, r = method.partition("@")
    return name, check_rule(r or rule)


def holdout_split(n_questions: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(tuning columns, held-out columns): ``share`` of the questions held out, drawn from ``seed`` (each
    seed a new split, the same for every method, so comparisons stay paired)."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"the held-out share must be in (0, 1), got {share!r}")
    held = int(round(share * n_questions))
    if not 1 <= held < n_questions:
        raise ValueError(f"holding out {share:g} of {n_questions} questions leaves no question on one side")
    perm = np.random.default_rng([seed, 4242]).permutation(n_questions)
    return np.sort(perm[held:]), np.sort(perm[:held])


def _run_one(args: tuple) -> tuple[str, str, dict[str, np.ndarray], float]:
    import time

    R, space, method, setting, seeds, batch, fractions, rule, params, max_fraction, holdout = args
    try:  # small matrices: BLAS threads only contend (30x slower on a loaded 2-core machine)
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover
        pass
    start = time.perf_counter()
    name, rule = split_method(method, rule)
    fr = np.asarray(fractions)
    keep = fr <= max_fraction + 1e-9
    per_seed = []
    for s in seeds:
        Rs, truth = R, None
        if holdout:
            tune, held = holdout_split(R.shape[1], holdout, s)
            Rs, truth = R[:, tune], R[:, held].mean(axis=1)
        res = replay(Rs, space, name, batch=batch, seed=s, fractions=list(fr[keep]), rule=rule, policy_params=params,
                     truth=truth)
        if not keep.all():  # a capped method: NaN beyond its budget
            for k, v in res.items():
                full = np.full(fr.size, np.nan)
                full[keep] = v
                res[k] = full
        per_seed.append(res)
    stacked = {k: np.stack([p[k] for p in per_seed]) for k in per_seed[0]}
    return method, setting, stacked, time.perf_counter() - start


def run_bench(
    table: ReplayTable,
    methods: Sequence[str],
    rewards: Mapping[str, Any],
    *,
    seeds: int | Sequence[int] = 20,
    batch: int = 4,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    rule: str = "policy",
    holdout: float | None = None,
    policy_params: Mapping[str, Mapping[str, Any]] | None = None,
    method_seeds: Mapping[str, int] | None = None,
    max_fraction: Mapping[str, float] | None = None,
    jobs: int = 1,
    progress: bool = False,
) -> BenchResult:
    """Replay every method on every reward setting (``{"w=0.5": 0.5, ...}``) for ``seeds`` seeds.

    A method is a registered policy name, ``"grid"``, or ``"name@RULE"`` to rank its recommendation by another
    rule of :mod:`autorag_hp.ranking` (``@mean``: the raw observed mean). ``holdout``: the share of questions
    held out per seed; methods tune on the rest and are judged by grid's ranking on the held-out part. ``method_seeds`` / ``max_fraction`` give a slow method (``optuna_tpe``) fewer seeds
    and a capped budget (its later checkpoints are NaN).
    """
    from autorag_hp.evaluation.stats import split_half_agreement, topk_stability

    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    mats = {name: table.reward_matrix(spec) for name, spec in rewards.items()}
    truth = {}
    for name, R in mats.items():
        sc = grid_scores(R)
        order = np.argsort(-sc, kind="stable")
        truth[name] = {
            "best_score": float(sc[order[0]]), "top5": [table.space.config_at(int(i)).to_dict() for i in order[:5]],
            "top5_scores": [float(sc[i]) for i in order[:5]], "mean_score": float(sc.mean()),
            "question_sd": float(R.std(axis=1).mean()),
            # the noise ceiling: how stable grid's own top k is (no method can be judged more finely)
            "ceiling": {f"bootstrap@{k}": round(topk_stability(R, k), 3) for k in (3, 5)}
            | {f"halves@{k}": round(split_half_agreement(R, k), 3) for k in (3, 5)},
        }
    def seeds_of(m: str) -> list[int]:
        n = (method_seeds or {}).get(split_method(m)[0])
        return seed_list if n is None else seed_list[:n]

    jobs_args = [(mats[s], table.space, m, s, seeds_of(m), batch, list(fractions), rule,
                  dict((policy_params or {}).get(split_method(m)[0], {})),
                  float((max_fraction or {}).get(split_method(m)[0], 1.0)), holdout)
                 for s in rewards for m in methods]
    runs, secs = {}, {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs_args), desc="bench", unit="run")
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs) as ex:
            for m, s, d, t in ex.map(_run_one, jobs_args):
                runs[(m, s)], secs[(m, s)] = d, t
                if bar:
                    bar.set_postfix_str(f"{m} {s}", refresh=False)
                    bar.update()
    else:
        for a in jobs_args:
            m, s, d, t = _run_one(a)
            runs[(m, s)], secs[(m, s)] = d, t
            if bar:
                bar.set_postfix_str(f"{m} {s} {t:.1f}s", refresh=False)
                bar.update()
    if bar:
        bar.close()
    info = {"n_configs": table.n_configs, "n_questions": table.n_questions, "batch": batch,
            "seeds": len(seed_list), "rule": rule, "note": table.note, "holdout": holdout}
    grid_calls = table.grid_calls
    if holdout:
        grid_calls = table.n_configs * len(holdout_split(table.n_questions, holdout, 0)[0])
    return BenchResult(list(fractions), grid_calls, list(rewards), list(methods), runs, secs, truth, info)
