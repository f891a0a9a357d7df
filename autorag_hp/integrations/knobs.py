"""The knobs of a wrapped chain: discovered from LangChain's ``config_specs``, and readable arm labels for
knob values that are not scalars (``{"k": 5}`` is the arm ``"k=5"``).

>>> arm_labels([{"k": 1}, {"k": 5, "fetch_k": 20}])
{'k=1': {'k': 1}, 'k=5, fetch_k=20': {'k': 5, 'fetch_k': 20}}
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autorag_hp.errors import InvalidConfigError

__all__ = ["Knob", "discover_knobs", "arm_labels"]

_SCALAR = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Knob:
    """One configurable of a chain: ``choices`` lists an alternatives knob's keys (``None`` for a field)."""

    id: str
    default: Any
    annotation: Any = None
    choices: tuple | None = None
    description: str | None = None


def discover_knobs(chain: Any) -> dict[str, Knob]:
    """The knobs a chain advertises through ``config_specs`` (fields and alternatives), by id."""
    knobs: dict[str, Knob] = {}
    for spec in getattr(chain, "config_specs", []) or []:
        ann = spec.annotation
        choices = tuple(m.value for m in ann) if isinstance(ann, type) and issubclass(ann, enum.Enum) else None
        knobs[spec.id] = Knob(spec.id, spec.default, ann, choices, spec.description)
    return knobs


def _label(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_label(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_label(v) for v in value) + "]"
    if isinstance(value, _SCALAR):
        return str(value)
    name, text = getattr(value, "name", None), repr(value)
    if isinstance(name, str) and name:
        return f"{type(value).__name__}({name})"
    return text if len(text) <= 40 else type(value).__name__


def arm_labels(values: Sequence[Any]) -> dict[Any, Any]:
    """Arm value -> knob value: scalars stay as they are; a mapping reads ``k=5`` (``k=5, fetch_k=20``), a
    list ``[1, 2]``, another object its short repr or its type (and ``name``); a repeated label gets `` #i``."""
    arms: dict[Any, Any] = {}
    for i, v in enumerate(values):
        scalar = isinstance(v, _SCALAR) and not (isinstance(v, float) and not math.isfinite(v))
        arm = v if scalar else (_label(v)[:80] or f"#{i}")
        if arm in arms and (scalar or arms[arm] is v or _same(arms[arm], v)):
            raise InvalidConfigError(f"value {v!r} is listed twice; list each value once")
        arms[arm if arm not in arms else f"{arm} #{i}"] = v
    return arms


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # an object whose == does not answer a bool
        return False
