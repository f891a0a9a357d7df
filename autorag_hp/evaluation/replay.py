"""Replay benchmark: evaluate tuning policies against a precomputed grid table in seconds.

A grid table holds one row per (configuration, question). A :class:`ReplayTable` turns it into a
``configurations × questions`` matrix per reward (e.g. the paper's ``w·acc − (1−w)·tokens/t_max`` at one
``w``); :func:`replay` then plays a policy against it:

* a **question stream**: the table's questions in a new random order per seed (re-shuffled at each pass);
* each decision the policy picks a configuration and pays **one LLM call per (configuration, question)** it
  looks at: a batch of ``B`` consecutive questions of the stream; it sees the rewards of those cells only;
* at every checkpoint (a share of grid search's calls, ``C × Q``) we record, from the policy's state:
  Recall@k for k in ``ks``, the mean reward served so far (what online users got), and the true grid score
  (mean reward over all questions) of the configuration the policy would deploy (its top-1).

Ground truth. Grid's ranking is the mean reward of each configuration over *all* questions of the table.
Recall@k = |method's top-k ∩ grid's top-k| / k, where a configuration counts as a hit when its grid score
is at least grid's k-th best score (identical to set overlap unless grid scores tie at the boundary, where
the overlap would depend on an arbitrary tie-break).

Which top-k. What the method *deploys*: the recommendation of :mod:`autorag_hp.ranking` under ``rule``
(default ``"policy"``: exactly what :meth:`Tuner.best` returns for that policy on the same event log;
``"mean"`` is the raw observed mean, ``"posterior"`` / ``"lcb"`` the shrunk mean and the lower bound). Each
reward is reported with its question (``info["question"]``), so a (configuration, question) cell that the
stream revisits after it wraps around is averaged into one sample, as ``Tuner.suggest(question=...)`` does
live; the revisit is still charged as a call (a served user's question costs one).

Held-out truth. With ``truth=`` (``run_bench(holdout=...)``) the method tunes on some questions and is judged
on others: grid's ranking, ``recall@k``, ``deployed`` and ``regret`` (normalized: 0 = the truly best
configuration, 1 = a median one) come from the held-out questions, so agreeing with grid's noise on the
questions the method saw earns nothing.

Grid as a method. ``"grid"`` in a replay is grid search over a question *subsample*: at a budget of ``b``
calls every configuration has been evaluated on the first ``b / C`` questions of the stream; at 100 % it is
the full grid (Recall = 1 by definition). It is the cost reference, and a strong baseline at small budgets.

Speed. Policies are driven directly through the :class:`Policy` API (``select`` / ``observe_decision`` /
``update`` with weight ``1/B``, exactly the calls :class:`~autorag_hp.tuner.Tuner` makes), on a numpy reward
matrix; ``tests/test_replay.py`` checks that driving the same policy through a Tuner gives the same numbers.

>>> from autorag_hp.space import SearchSpace
>>> table = ReplayTable.synthetic(SearchSpace({"a": [0, 1, 2], "b": [0, 1, 2]}), n_questions=40, seed=0)
>>> R = table.reward_matrix(0.5)
>>> res = replay(R, table.space, "hier_ucb", batch=4, seed=0, fractions=[0.2, 1.0])
>>> sorted(res)
['calls', 'deployed', 'recall@3', 'recall@5', 'regret', 'served']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autorag_hp.evaluation.stats import normalized_regret
from autorag_hp.space import Config, SearchSpace

DEFAULT_FRACTIONS: tuple[float, ...] = tuple(round(0.01 * i, 2) for i in range(1, 101))


# ------------------------------------------------------------------------------------------------ table
@dataclass
class ReplayTable:
    """A complete ``configurations × questions`` block of a grid table, as numpy arrays.

    ``values[name]`` is a float array of shape ``(space.size, len(questions))`` (NaN = not applicable), row
    ``i`` being ``space.config_at(i)``. ``note`` says what was kept when the source table was partial.
    """

    space: SearchSpace
    questions: list[str]
    values: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def n_configs(self) -> int:
        return self.space.size

    @property
    def n_questions(self) -> int:
        return len(self.questions)

    @property
    def grid_calls(self) -> int:
        """LLM calls grid search pays: every configuration on every question."""
        return self.n_configs * self.n_questions

    # --- construction ---------------------------------------------------------------------------------
    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Mapping[str, Any]],
        space: SearchSpace | Mapping[str, Any],
        *,
        meta: Mapping[str, Any] | None = None,
        fix: Mapping[str, Any] | None = None,
        max_questions: int | None = None,
    ) -> ReplayTable:
        """Build from grid rows (``config``, ``question_id``, ``metrics``, tokens...).

        ``fix`` restricts the space to a sub-space (``{"temperature": 0.0}``: that parameter keeps one value).
        Only questions evaluated for *every* configuration of the (sub-)space are kept; rows of other
        configurations are ignored. ``max_questions`` keeps the first N such questions (in question-id order).
        """
        space = space if isinstance(space, SearchSpace) else SearchSpace(space)
        if fix:
            unknown = [k for k in fix if k not in space.names]
            if unknown:
                raise ValueError(f"fix names unknown parameter(s) {unknown}; the space has {space.names}")
            spec = space.to_dict()
            for p in space.params:
                if p.name in fix:
                    vals = [p.values[p.index(fix[p.name])]]
                    if p.group is None:
                        spec[p.name] = vals
                    else:
                        spec[p.group][p.name] = vals
            space = SearchSpace(spec)
        cells: dict[tuple[int, str], Mapping[str, Any]] = {}
        qseen: dict[str, None] = {}
        for r in rows:
            cfg = r["config"]
            if isinstance(cfg, str):
                cfg = Config.from_json(cfg)
            try:
                idx = space.index({k: cfg[k] for k in space.names})
            except Exception:  # noqa: BLE001 - a configuration outside the (sub-)space
                continue
            if any(cfg.get(k) != v for k, v in (fix or {}).items()):
                continue
            qid = str(r["question_id"])
            cells[(idx, qid)] = r
            qseen.setdefault(qid, None)
        counts: dict[str, int] = {}
        for _, q in cells:
            counts[q] = counts.get(q, 0) + 1
        complete = sorted(q for q in qseen if counts.get(q, 0) == space.size)
        if max_questions is not None:
            complete = complete[:max_questions]
        if not complete:
            raise ValueError(
                f"no question was evaluated for all {space.size} configurations; the table holds {len(qseen)} "
                "questions with rows for some configurations only: let the grid run longer, or restrict the space "
                "with fix={param: value}"
            )
        note = ""
        if len(complete) < len(qseen):
            note = (f"partial table: {len(complete)} of {len(qseen)} questions are complete for all "
                    f"{space.size} configurations; only those are used")
        names: set[str] = set()
        for r in cells.values():
            names.update((r.get("metrics") or {}).keys())
        values = {n: np.full((space.size, len(complete)), np.nan) for n in names}
        for extra in ("prompt_tokens", "completion_tokens", "latency_s", "llm_calls"):
            values.setdefault(extra, np.full((space.size, len(complete)), np.nan))
        for j, q in enumerate(complete):
            for i in range(space.size):
                r = cells[(i, q)]
                for n, v in (r.get("metrics") or {}).items():
                    if v is not None:
                        values[n][i, j] = float(v)
                for extra in ("prompt_tokens", "completion_tokens", "latency_s", "llm_calls"):
                    if r.get(extra) is not None:
                        values[extra][i, j] = float(r[extra])
        if np.isnan(values.get("total_tokens", np.full(1, np.nan))).all():
            values["total_tokens"] = values["prompt_tokens"] + values["completion_tokens"]
        return cls(space, complete, values, dict(meta or {}), note)

    @classmethod
    def load(cls, path: str | Path, *, name: str | None = None, fix: Mapping[str, Any] | None = None,
             max_questions: int | None = None) -> ReplayTable:
        """Load an exported grid (``.jsonl.gz`` / ``.csv.gz``), a SQLite table file, or a database URL."""
        from autorag_hp.evaluation.table import GridTable, read_export

        s = str(path)
        if "://" in s and not s.startswith("sqlite"):
            t = GridTable(s, name or "grid")
            rows, meta = list(t.rows()), t.meta()
        elif name is not None:
            t = GridTable(s, name)
            rows, meta = list(t.rows()), t.meta()
        else:
            if not Path(s).exists():
                raise FileNotFoundError(f"grid table {s!r} does not exist; compute one with `autorag-hp grid`")
            rows, meta = read_export(s)
        if "space" not in meta:
            raise ValueError(f"{s}: the table records no search space (meta 'space'); was it written by the grid runner?")
        return cls.from_rows(rows, SearchSpace(meta["space"]), meta=meta, fix=fix, max_questions=max_questions)

    @classmethod
    def synthetic(
        cls,
        space: SearchSpace | Mapping[str, Any],
        *,
        n_questions: int = 100,
        seed: int = 0,
        effect: float = 0.25,
        interaction: float = 0.05,
        difficulty_sd: float = 1.0,
        tokens_effect: float = 300.0,
    ) -> ReplayTable:
        """A table with known structure: each configuration answers question ``q`` correctly when
        ``quality(config) − difficulty(q) + noise > 0`` (``quality`` = additive per-value effects + small
        pairwise interactions); ``total_tokens`` grows with the value index of each parameter.

        Metrics: ``answer_contains_reference`` (0/1), ``total_tokens``. Rewards then follow the paper's form.
        """
        space = space if isinstance(space, SearchSpace) else SearchSpace(space)
        rng = np.random.default_rng([seed, 11])
        P = len(space.params)
        effects = [rng.normal(0.0, effect, len(p)) for p in space.params]
        tok = [rng.uniform(0.0, tokens_effect, len(p)) for p in space.params]
        inter = rng.normal(0.0, interaction, (P, P, 16, 16))
        digits = np.array([space.digits(space.config_at(i)) for i in range(space.size)]).reshape(space.size, P)
        quality = np.zeros(space.size)
        tokens = np.full(space.size, 100.0)
        for a in range(P):
            quality += effects[a][digits[:, a]]
            tokens += tok[a][digits[:, a]]
            for b in range(a + 1, P):
                quality += inter[a, b, digits[:, a] % 16, digits[:, b] % 16]
        diff = rng.normal(0.0, difficulty_sd, n_questions)
        noise = rng.standard_normal((space.size, n_questions))
        correct = (quality[:, None] - diff[None, :] + noise > 0).astype(float)
        tq = tokens[:, None] * rng.uniform(0.8, 1.2, (1, n_questions))
        values = {"answer_contains_reference": correct, "total_tokens": np.round(tq)}
        qs = [f"q{j:04d}" for j in range(n_questions)]
        return cls(space, qs, values, {"synthetic": {"seed": seed, "effect": effect, "interaction": interaction}})

    # --- rewards --------------------------------------------------------------------------------------
    def reward_matrix(self, reward: Any) -> np.ndarray:
        """The reward of every cell, shape ``(C, Q)``. ``reward``: a ``w`` (the paper's reward with the
        defaults of the bundled ``paper_w*`` rewards), a reward spec (dict, bundled name or YAML path), or a Reward."""
        from autorag_hp.evaluation.rewards import PaperReward, reward_from_spec

        if isinstance(reward, int | float) and not isinstance(reward, bool):
            reward = PaperReward(w=float(reward))
        elif not callable(reward):
            reward = reward_from_spec(reward)
        if isinstance(reward, PaperReward):
            m = self._metric(reward.metric)
            t = self._metric(reward.tokens)
            acc = np.where(m >= reward.threshold, 1.0, -1.0)
            return reward.w * acc - (1.0 - reward.w) * t / reward.t_max
        out = np.empty((self.n_configs, self.n_questions))
        names = list(self.values)
        for i in range(self.n_configs):
            for j in range(self.n_questions):
                row = {n: (None if math.isnan(v) else v) for n in names for v in (float(self.values[n][i, j]),)}
                out[i, j] = float(reward(row))
        return out

    def _metric(self, name: str) -> np.ndarray:
        if name not in self.values:
            raise KeyError(f"the table has no metric {name!r}; it has {', '.join(sorted(self.values))}")
        a = self.values[name]
        if np.isnan(a).any():
            raise ValueError(f"metric {name!r} is missing (None) in {int(np.isnan(a).sum())} cells; pick another metric")
        return a


# ------------------------------------------------------------------------------------------------ truth
def grid_scores(R: np.ndarray) -> np.ndarray:
    """Grid search's score of each configuration: its mean reward over all questions."""
    return R.mean(axis=1)


def recall_at(top: Sequence[int] | np.ndarray, scores: np.ndarray, k: int) -> float:
    """Share of grid's top-``k`` found in ``top`` (first ``k`` entries); ties at grid's k-th score count."""
    top = np.asarray(top, dtype=int)[:k]
    if top.size == 0:
        return 0.0
    kth = np.sort(scores)[::-1][min(k, scores.size) - 1]
    return float((scores[top] >= kth - 1e-12).sum()) / k


# ------------------------------------------------------------------------------------------------ replay
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
) -> dict[str, np.ndarray]:
    """Play one policy (a registered name or ``factory(space, seed)``) on reward matrix ``R`` (C × Q).

    ``truth``: the score of every configuration that the outcome is judged by (default: grid's mean over
    the columns of ``R``; a held-out part of the questions, or a synthetic table's true means).

    Returns arrays over ``fractions`` (shares of the calls a grid over ``R`` pays): ``calls``, ``recall@k``
    per k (against ``truth``'s top k), ``served`` (mean reward served so far), ``deployed`` (``truth`` of the
    recommendation, ``best(1)`` under ``rule``) and ``regret`` (its normalized regret: 0 = the truly best
    configuration, 1 = a median one). A policy that runs out of suggestions (grid) stops; its later
    checkpoints repeat its final state.
    """
    from autorag_hp.ranking import check_rule, top_indices

    check_rule(rule)
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
    while c < len(cps):
        if not pol.exhausted:
            sel = pol.select()
            cfg = sel.config
            i = index_of.get(cfg.id)
            if i is None:
                i = index_of[cfg.id] = space.index(cfg)
            info = {**sel.info, "decision": pol.t, "slot": 0, "batch": batch}
            pol.observe_decision(cfg, info)
            qs = stream[calls:calls + batch]
            rs = R[i, qs]
            for q, r in zip(qs.tolist(), rs.tolist()):  # the question names the cell: a revisit is no new sample
                pol.update(cfg, r, w, {**info, "question": q})
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


# ------------------------------------------------------------------------------------------------ bench
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


# ------------------------------------------------------------------------------------------------ live check
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
    from autorag_hp.evaluation.grid import question_id
    from autorag_hp.evaluation.metrics import compute_metrics
    from autorag_hp.evaluation.rewards import PaperReward, reward_from_spec
    from autorag_hp.tuner import Tuner

    if isinstance(reward, int | float) and not isinstance(reward, bool):
        reward = PaperReward(w=float(reward))
    elif not callable(reward):
        reward = reward_from_spec(reward)
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
        row: dict[str, Any] = dict(compute_metrics(answer, item, getattr(reward, "metrics", None) or None))
        row.setdefault("total_tokens", answer.total_tokens)
        row.setdefault("latency_s", answer.latency_s)
        r = float(reward(row))
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


def write_snapshot(source: str | Path, dest: str | Path, table: ReplayTable, *, name: str | None = None) -> Path:
    """Freeze the block of ``source`` that ``table`` uses (its configurations × complete questions) as a
    ``.jsonl.gz`` export of what the replay reads (configuration, question id, metrics, tokens, latency; no
    answer, question or context text), so a benchmark on a table still being computed can be re-run."""
    import gzip
    import json

    from autorag_hp.evaluation.table import GridTable, read_export

    s = str(source)
    if name is not None or ("://" in s and not s.startswith("sqlite")):
        t = GridTable(s, name or "grid")
        rows, meta = t.rows(), t.meta()
    else:
        rows, meta = read_export(s)
    keep_q = set(table.questions)
    ids = {table.space.config_at(i).id for i in range(table.space.size)}
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with gzip.open(dest, "wt", encoding="utf-8", compresslevel=9) as f:
        f.write(json.dumps({"_meta": {**meta, "snapshot_of": s, "note": table.note}}) + "\n")
        for r in rows:
            if str(r["question_id"]) in keep_q and Config(r["config"]).id in ids:
                slim = {k: r.get(k) for k in ("config_id", "question_id", "config", "metrics", "prompt_tokens",
                                              "completion_tokens", "latency_s", "llm_calls", "answer_reused")}
                f.write(json.dumps({**slim, "question": "", "answer": "", "contexts": []}, sort_keys=True) + "\n")
                n += 1
    if n != table.grid_calls:
        raise ValueError(f"snapshot holds {n} rows, expected {table.grid_calls}")
    return dest
