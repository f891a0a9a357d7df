"""The table a replay reads: a grid table's complete ``configurations × questions`` block, per metric, as numpy
arrays, and the reward of every cell."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autorag_hp.space import Config, SearchSpace


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
        rows, meta = open_rows(path, name)
        if "space" not in meta:
            raise ValueError(f"{path}: the table records no search space (meta 'space'); was it written by the grid runner?")
        return cls.from_rows(rows, SearchSpace(meta["space"]), meta=meta, fix=fix, max_questions=max_questions)

    # --- rewards --------------------------------------------------------------------------------------
    def reward_matrix(self, reward: Any) -> np.ndarray:
        """The reward of every cell, shape ``(C, Q)``. ``reward``: a ``w`` (the paper's reward with the
        defaults of the bundled ``paper_w*`` rewards), a reward spec (dict, bundled name or YAML path), a Reward
        or a function of the row (:func:`~autorag_hp.evaluation.rewards.as_reward`)."""
        from autorag_hp.evaluation.rewards import PaperReward, as_reward

        reward = as_reward(reward)
        if isinstance(reward, PaperReward):
            m = self.metric(reward.metric)
            t = self.metric(reward.tokens)
            acc = np.where(m >= reward.threshold, 1.0, -1.0)
            return reward.w * acc - (1.0 - reward.w) * t / reward.t_max
        out = np.empty((self.n_configs, self.n_questions))
        names = list(self.values)
        for i in range(self.n_configs):
            for j in range(self.n_questions):
                row = {n: (None if math.isnan(v) else v) for n in names for v in (float(self.values[n][i, j]),)}
                out[i, j] = float(reward(row))
        return out

    def metric(self, name: str) -> np.ndarray:
        """The values of metric ``name`` in every cell, shape ``(C, Q)``; an unknown or partly missing metric raises."""
        if name not in self.values:
            raise KeyError(f"the table has no metric {name!r}; it has {', '.join(sorted(self.values))}")
        a = self.values[name]
        if np.isnan(a).any():
            raise ValueError(f"metric {name!r} is missing (None) in {int(np.isnan(a).sum())} cells; pick another metric")
        return a


def open_rows(source: str | Path, name: str | None = None) -> tuple[Iterable[dict[str, Any]], dict[str, Any]]:
    """The rows and meta of a grid table: table ``name`` (default ``"grid"``) of a database URL, table ``name``
    of a SQLite file, or, without a name, an export (``.jsonl.gz`` / ``.csv.gz``) or a SQLite file's only table.
    A database's rows are streamed."""
    from autorag_hp.evaluation.table import GridTable
    from autorag_hp.evaluation.table_export import read_export

    s = str(source)
    if name is not None or ("://" in s and not s.startswith("sqlite")):
        t = GridTable(s, name or "grid")
        return t.rows(), t.meta()
    if not Path(s).exists():
        raise FileNotFoundError(f"grid table {s!r} does not exist; compute one with `autorag-hp grid`")
    return read_export(s)
