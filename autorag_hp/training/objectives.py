"""Small real objectives with known optima, importable by worker processes (tests, docs, smoke runs).

Example:
    >>> from autorag_hp.training.objectives import quadratic, QUADRATIC_SPACE
    >>> quadratic({"x": 2.0, "y": -1.0})
    0.0
"""

from __future__ import annotations

import math

from .dimensions import Float, Int

# f(x, y) = (x - 2)^2 + (y + 1)^2, minimum 0 at (2, -1)
QUADRATIC_SPACE = {"x": Float(-5.0, 5.0), "y": Float(-5.0, 5.0)}
QUADRATIC_OPTIMUM = {"x": 2.0, "y": -1.0}


def quadratic(params: dict) -> float:
    return (params["x"] - 2.0) ** 2 + (params["y"] + 1.0) ** 2


# A mixed integer/log objective: minimum 0 at depth=7, lr=1e-2
MIXED_SPACE = {"depth": Int(1, 15), "lr": Float(1e-4, 1.0, log=True)}


def mixed(params: dict) -> float:
    return (params["depth"] - 7) ** 2 / 10.0 + math.log10(params["lr"] / 1e-2) ** 2


def quadratic_with_steps(params: dict, report) -> float:
    """Reports 10 intermediate values that converge to :func:`quadratic` (for pruner tests)."""
    final = quadratic(params)
    value = final
    for step in range(1, 11):
        value = final + 10.0 / step
        report(step, value)
    return final
