"""Rewards: turn one evaluated answer (its metrics, tokens, latency, user feedback) into the number a bandit maximises.

A reward reads a *row*: a mapping with metric values by name (as :func:`~autorag_hp.evaluation.metrics.compute_metrics`
returns, and as the grid table stores), plus ``total_tokens`` / ``latency_s`` and, for feedback, ``feedback``.
Declare one in Python::

    >>> r = PaperReward(w=0.5, metric="answer_contains_reference", threshold=0.5, t_max=1000)
    >>> r({"answer_contains_reference": 1.0, "total_tokens": 400})
    0.3

or in YAML / a dict, through :func:`reward_from_spec`::

    type: paper            # paper | weighted_sum | available_mean | feedback | latency_penalty | callable (Python)
    w: 0.5
    metric: answer_contains_reference
    threshold: 0.5
    t_max: 1000

Formulas
--------
- ``paper`` (AutoRAG-HP, Fu et al. 2024): ``r = w·acc − (1−w)·tokens/t_max`` with ``acc = +1`` if
  ``row[metric] ≥ threshold`` else ``−1``; ``tokens = row[tokens]`` (default ``total_tokens``); ``w ∈ [0, 1]``,
  ``t_max > 0``. Range ``[−1, 1]`` while ``tokens ≤ t_max``.
- ``weighted_sum``: ``r = bias + Σᵢ weightᵢ · row[metricᵢ]`` (negative weights penalise, e.g. tokens).
- ``available_mean``: ``r = mean(row[mᵢ] for the metrics the question can be scored on) − cost · min(1,
  tokens / t_max)``: a metric that does not apply (``None``: no reference answer, no gold sources) is left
  out; at least one must apply.
- ``feedback``: thumbs: ``up → +1``, ``down → −1`` (also ``True/False``, ``1/−1``, ``"👍"/"👎"``);
  stars: ``r = (stars − 3) / 2`` so 1★ → −1, 3★ → 0, 5★ → +1; read from ``row[field]`` (default ``feedback``).
- ``latency_penalty``: ``r = base(row) − per_second · max(0, latency_s − budget_s)``; without ``base`` the
  reward is the penalty alone.

A bad declaration (unknown type or metric, ``w`` outside [0, 1], ``t_max ≤ 0``) raises
:class:`InvalidRewardSpecError` when the reward is built. A value a reward needs but the row lacks (or holds as
``None``: not applicable) raises :class:`MissingValueError` naming the key, never a silent 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autorag_hp.errors import AutoRAGHPError
from autorag_hp.types import Answer, QAItem


class InvalidRewardSpecError(AutoRAGHPError, ValueError):
    """A reward declaration is malformed (unknown type, weight outside [0, 1], unknown metric, ...)."""


class MissingValueError(AutoRAGHPError, KeyError):
    """The row a reward reads lacks a value it needs."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "missing value"


def _finite(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidRewardSpecError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise InvalidRewardSpecError(f"{name} must be finite, got {value!r}")
    return v


def _check_metric(name: str) -> str:
    from autorag_hp.evaluation.metrics import get_metric

    try:
        get_metric(name)
    except Exception as e:
        raise InvalidRewardSpecError(f"reward refers to metric {name!r}: {e}") from None
    return name


def _get(row: Mapping[str, Any], key: str) -> float:
    v = row.get(key)
    if v is None:
        raise MissingValueError(
            f"reward needs {key!r} but the row has {'None (not applicable)' if key in row else 'no such key'}; "
            f"row keys: {', '.join(sorted(row)) or '(none)'}"
        )
    return float(v)


class Reward:
    """Base: ``reward(row) -> float``. ``metrics`` lists the metric names it reads, ``to_spec()`` its declaration."""

    kind = "reward"
    metrics: tuple[str, ...] = ()

    def __call__(self, row: Mapping[str, Any]) -> float:
        raise NotImplementedError

    def to_spec(self) -> dict:
        raise NotImplementedError

    def from_answer(self, answer: Answer, item: QAItem, feedback: Any = None) -> float:
        """Compute the needed metrics of one answer, then the reward."""
        from autorag_hp.evaluation.metrics import compute_metrics

        row: dict[str, Any] = dict(compute_metrics(answer, item, self.metrics))
        row.setdefault("total_tokens", answer.total_tokens)
        row.setdefault("latency_s", answer.latency_s)
        if feedback is not None:
            row["feedback"] = feedback
        return self(row)


@dataclass(frozen=True)
class PaperReward(Reward):
    """``r = w·acc − (1−w)·tokens/t_max``, ``acc = +1`` if ``row[metric] ≥ threshold`` else ``−1``."""

    w: float
    metric: str = "answer_contains_reference"
    threshold: float = 0.5
    t_max: float = 1000.0
    tokens: str = "total_tokens"
    kind = "paper"

    def __post_init__(self) -> None:
        w = _finite("w", self.w)
        if not 0.0 <= w <= 1.0:
            raise InvalidRewardSpecError(
                f"reward weight w must be in [0, 1] (w weighs accuracy, 1 − w weighs token cost), got {self.w!r}"
            )
        if _finite("t_max", self.t_max) <= 0:
            raise InvalidRewardSpecError(f"t_max must be > 0 (the token count that costs a full point), got {self.t_max!r}")
        _finite("threshold", self.threshold)
        _check_metric(self.metric)

    @property
    def metrics(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.metric, self.tokens)

    def accuracy(self, row: Mapping[str, Any]) -> float:
        return 1.0 if _get(row, self.metric) >= self.threshold else -1.0

    def __call__(self, row: Mapping[str, Any]) -> float:
        return self.w * self.accuracy(row) - (1.0 - self.w) * _get(row, self.tokens) / self.t_max

    def to_spec(self) -> dict:
        return {"type": "paper", "w": self.w, "metric": self.metric, "threshold": self.threshold,
                "t_max": self.t_max, "tokens": self.tokens}


@dataclass(frozen=True)
class WeightedSumReward(Reward):
    """``r = bias + Σᵢ weightᵢ · row[metricᵢ]``."""

    weights: Mapping[str, float]
    bias: float = 0.0
    kind = "weighted_sum"

    def __post_init__(self) -> None:
        if not self.weights:
            raise InvalidRewardSpecError("weighted_sum needs at least one metric weight, e.g. {token_f1: 1.0}")
        clean = {_check_metric(k): _finite(f"weight of {k}", v) for k, v in self.weights.items()}
        object.__setattr__(self, "weights", clean)
        _finite("bias", self.bias)

    @property
    def metrics(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.weights)

    def __call__(self, row: Mapping[str, Any]) -> float:
        return self.bias + sum(w * _get(row, k) for k, w in self.weights.items())

    def to_spec(self) -> dict:
        return {"type": "weighted_sum", "weights": dict(self.weights), "bias": self.bias}


@dataclass(frozen=True)
class AvailableMeanReward(Reward):
    """``r = mean(applicable row[mᵢ]) − cost · min(1, tokens / t_max)``; a metric that is ``None`` does not apply."""

    of: tuple[str, ...] = ("token_f1", "mrr")
    cost: float = 0.1
    t_max: float = 2000.0
    tokens: str = "total_tokens"
    kind = "available_mean"

    def __post_init__(self) -> None:
        if isinstance(self.of, str) or not self.of:
            raise InvalidRewardSpecError("available_mean needs a list of metrics in 'of', e.g. [token_f1, mrr]")
        object.__setattr__(self, "of", tuple(_check_metric(m) for m in self.of))
        _finite("cost", self.cost)
        if _finite("t_max", self.t_max) <= 0:
            raise InvalidRewardSpecError(f"t_max must be > 0, got {self.t_max}")

    @property
    def metrics(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.of

    def __call__(self, row: Mapping[str, Any]) -> float:
        parts = [float(row[m]) for m in self.of if row.get(m) is not None]
        if not parts:
            raise MissingValueError(f"none of {list(self.of)} applies to this question: it needs a reference "
                                    "answer or gold sources")
        return sum(parts) / len(parts) - self.cost * min(1.0, _get(row, self.tokens) / self.t_max)

    def to_spec(self) -> dict:
        return {"type": "available_mean", "of": list(self.of), "cost": self.cost, "t_max": self.t_max,
                "tokens": self.tokens}


#: The default rewards, side by side because they differ on purpose. Offline (``tune``, with a question set
#: that may carry gold sources as well as reference answers): the mean of token F1 and gold-source MRR,
#: whichever the question has, minus 0.1 x tokens/2000. Online (the service, where a caller can send only a
#: reference answer): ``2·token_f1 − 1``, on the same [−1, 1] scale as thumbs and stars feedback.
DEFAULT_OFFLINE_REWARD: dict[str, Any] = {"type": "available_mean", "of": ["token_f1", "mrr"], "cost": 0.1,
                                          "t_max": 2000.0}
DEFAULT_ONLINE_REWARD: dict[str, Any] = {"type": "weighted_sum", "weights": {"token_f1": 2.0}, "bias": -1.0}


_THUMBS = {"up": 1.0, "down": -1.0, "👍": 1.0, "👎": -1.0, "+1": 1.0, "-1": -1.0, "1": 1.0}


@dataclass(frozen=True)
class FeedbackReward(Reward):
    """User feedback → reward. thumbs: up +1 / down −1; stars (1–5): ``(stars − 3) / 2``."""

    scale: str = "thumbs"
    field: str = "feedback"
    kind = "feedback"
    metrics = ()

    def __post_init__(self) -> None:
        if self.scale not in ("thumbs", "stars"):
            raise InvalidRewardSpecError(f"feedback scale must be 'thumbs' or 'stars', got {self.scale!r}")

    def __call__(self, row: Mapping[str, Any]) -> float:
        if self.field not in row or row[self.field] is None:
            raise MissingValueError(f"feedback reward needs {self.field!r} in the row (the user's {self.scale})")
        return self.convert(row[self.field])

    def convert(self, value: Any) -> float:
        if self.scale == "thumbs":
            if isinstance(value, bool):
                return 1.0 if value else -1.0
            if isinstance(value, int | float) and value in (1, -1):
                return float(value)
            key = str(value).strip().lower()
            if key in _THUMBS:
                return _THUMBS[key]
            raise InvalidRewardSpecError(f"thumbs feedback must be up/down (or True/False, 1/-1), got {value!r}")
        try:
            stars = float(value)
        except (TypeError, ValueError):
            raise InvalidRewardSpecError(f"star feedback must be a number from 1 to 5, got {value!r}") from None
        if not 1 <= stars <= 5:
            raise InvalidRewardSpecError(f"star feedback must be from 1 to 5, got {value!r}")
        return (stars - 3.0) / 2.0

    def to_spec(self) -> dict:
        return {"type": "feedback", "scale": self.scale, "field": self.field}


@dataclass(frozen=True)
class LatencyPenalty(Reward):
    """``r = base(row) − per_second · max(0, latency_s − budget_s)`` (base 0 when omitted)."""

    per_second: float
    budget_s: float = 0.0
    base: Reward | None = None
    kind = "latency_penalty"

    def __post_init__(self) -> None:
        if _finite("per_second", self.per_second) < 0:
            raise InvalidRewardSpecError(f"per_second must be ≥ 0 (a penalty), got {self.per_second!r}")
        if _finite("budget_s", self.budget_s) < 0:
            raise InvalidRewardSpecError(f"budget_s must be ≥ 0, got {self.budget_s!r}")

    @property
    def metrics(self) -> tuple[str, ...]:  # type: ignore[override]
        return (*(self.base.metrics if self.base else ()), "latency_s")

    def __call__(self, row: Mapping[str, Any]) -> float:
        base = self.base(row) if self.base is not None else 0.0
        return base - self.per_second * max(0.0, _get(row, "latency_s") - self.budget_s)

    def to_spec(self) -> dict:
        spec = {"type": "latency_penalty", "per_second": self.per_second, "budget_s": self.budget_s}
        if self.base is not None:
            spec["base"] = self.base.to_spec()
        return spec


@dataclass(frozen=True)
class CallableReward(Reward):
    """Any Python function of the row: ``CallableReward(lambda row: row["token_f1"], metrics=("token_f1",))``."""

    fn: Callable[[Mapping[str, Any]], float]
    metrics: tuple[str, ...] = field(default=())  # type: ignore[assignment]
    kind = "callable"

    def __post_init__(self) -> None:
        for m in self.metrics:
            _check_metric(m)

    def __call__(self, row: Mapping[str, Any]) -> float:
        return float(self.fn(row))

    def to_spec(self) -> dict:
        raise InvalidRewardSpecError("a callable reward is declared in Python and has no YAML form")


def _build_paper(spec: dict) -> Reward:
    return PaperReward(**spec)


def _build_weighted(spec: dict) -> Reward:
    return WeightedSumReward(**spec)


def _build_feedback(spec: dict) -> Reward:
    return FeedbackReward(**spec)


def _build_latency(spec: dict) -> Reward:
    spec = dict(spec)
    if spec.get("base") is not None:
        spec["base"] = reward_from_spec(spec["base"])
    return LatencyPenalty(**spec)


REWARDS: dict[str, Callable[[dict], Reward]] = {
    "paper": _build_paper,
    "weighted_sum": _build_weighted,
    "available_mean": lambda spec: AvailableMeanReward(**spec),
    "feedback": _build_feedback,
    "latency_penalty": _build_latency,
}


def reward_from_spec(spec: Mapping[str, Any] | str | Path | Reward) -> Reward:
    """Build a reward from a dict, a bundled name (``python_docs_w0.5``; see :mod:`autorag_hp.specs`), a YAML
    file path, or return a :class:`Reward` unchanged.

    >>> reward_from_spec({"type": "weighted_sum", "weights": {"token_f1": 1.0, "total_tokens": -0.001}})
    WeightedSumReward(weights={'token_f1': 1.0, 'total_tokens': -0.001}, bias=0.0)
    >>> reward_from_spec("paper_w0.9").w
    0.9
    """
    if isinstance(spec, Reward):
        return spec
    if isinstance(spec, str | Path):
        import yaml

        from autorag_hp.specs import resolve

        path = resolve(spec, "reward", error=InvalidRewardSpecError)
        spec = yaml.safe_load(path.read_text())
        if isinstance(spec, dict) and "reward" in spec and "type" not in spec:
            spec = spec["reward"]
    if not isinstance(spec, Mapping):
        raise InvalidRewardSpecError(f"a reward spec is a mapping with a 'type' key, got {type(spec).__name__}")
    spec = dict(spec)
    kind = spec.pop("type", None)
    spec.pop("description", None)
    if kind not in REWARDS:
        raise InvalidRewardSpecError(f"unknown reward type {kind!r}; known: {', '.join(REWARDS)}")
    try:
        return REWARDS[kind](spec)
    except TypeError as e:  # unexpected / missing keys
        raise InvalidRewardSpecError(f"bad {kind!r} reward spec: {e}") from None


def as_reward(reward: float | Mapping[str, Any] | str | Path | Callable[[Mapping[str, Any]], float]) -> Reward:
    """What a reward argument means where a number is also accepted (the replay benchmark, its live check): a
    number ``w`` is the paper reward at that ``w`` with its other parameters at their defaults (those of the
    bundled ``paper_w*`` rewards), a :class:`Reward` is itself, another function of the row is a
    :class:`CallableReward` reading the default metrics, anything else a spec for :func:`reward_from_spec`.

    >>> as_reward(0.5)
    PaperReward(w=0.5, metric='answer_contains_reference', threshold=0.5, t_max=1000.0, tokens='total_tokens')
    """
    if isinstance(reward, Reward):
        return reward
    if isinstance(reward, int | float) and not isinstance(reward, bool):
        return PaperReward(w=float(reward))
    if callable(reward):
        from autorag_hp.evaluation.metrics import DEFAULT_METRICS

        return CallableReward(reward, metrics=DEFAULT_METRICS)
    return reward_from_spec(reward)
