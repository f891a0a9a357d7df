"""The dimensions a training tuner searches: ranges (:class:`Float`, :class:`Int`, optionally log-scale or
stepped) and choices (:class:`Categorical`), sampled by Optuna. Frozen, validated, picklable (they cross
processes).

Not :mod:`autorag_hp.space`: that is a finite product of listed values whose every configuration has a stable
id (the arms of the bandit tuner and the rows of a grid table); these are continuous ranges a sampler draws
from, made finite only by :func:`to_grid`.

Example:
    >>> from autorag_hp.training.dimensions import Float, Int, Categorical
    >>> space = {"lr": Float(1e-4, 1e-1, log=True), "depth": Int(3, 15), "n": Categorical([50, 100])}
    >>> Float(1.0, 0.5)
    Traceback (most recent call last):
    ...
    ValueError: Float range is empty: low=1.0 > high=0.5; swap the bounds
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Float:
    low: float
    high: float
    log: bool = False
    step: float | None = None

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"Float range is empty: low={self.low} > high={self.high}; swap the bounds")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scale Float needs low > 0, got low={self.low}")
        if self.log and self.step is not None:
            raise ValueError("a Float cannot have both log=True and a step")

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)


@dataclass(frozen=True)
class Int:
    low: int
    high: int
    log: bool = False
    step: int = 1

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"Int range is empty: low={self.low} > high={self.high}; swap the bounds")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scale Int needs low > 0, got low={self.low}")
        if self.step <= 0:
            raise ValueError(f"Int step must be positive, got {self.step}")

    def suggest(self, trial: Any, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step)


@dataclass(frozen=True)
class Categorical:
    choices: tuple

    def __init__(self, choices: Sequence) -> None:
        choices = tuple(choices)
        if not choices:
            raise ValueError("Categorical needs at least one choice")
        object.__setattr__(self, "choices", choices)

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.choices))


Dimension = Float | Int | Categorical


def validate_space(space: Mapping[str, Dimension]) -> dict[str, Dimension]:
    """Check that ``space`` maps names to :class:`Float` / :class:`Int` / :class:`Categorical`."""
    if not isinstance(space, Mapping) or not space:
        raise ValueError("the search space must be a non-empty dict of name -> Float/Int/Categorical")
    for name, dim in space.items():
        if not isinstance(name, str):
            raise TypeError(f"parameter names must be strings, got {name!r}")
        if not isinstance(dim, Float | Int | Categorical):
            raise TypeError(
                f"parameter {name!r}: expected Float, Int or Categorical from autorag_hp.training.dimensions, "
                f"got {type(dim).__name__}"
            )
    return dict(space)


def to_grid(space: Mapping[str, Dimension], points: int = 5) -> dict[str, list]:
    """A grid over ``space``: categoricals as they are, ranges at ``points`` evenly (or log-evenly) spaced values."""
    import numpy as np

    grid: dict[str, list] = {}
    for name, dim in validate_space(space).items():
        if isinstance(dim, Categorical):
            grid[name] = list(dim.choices)
        elif isinstance(dim, Int):
            vals = np.geomspace(dim.low, dim.high, points) if dim.log else np.linspace(dim.low, dim.high, points)
            grid[name] = sorted({int(round(v)) for v in vals})
        else:
            vals = np.geomspace(dim.low, dim.high, points) if dim.log else np.linspace(dim.low, dim.high, points)
            grid[name] = [float(v) for v in vals]
    return grid
