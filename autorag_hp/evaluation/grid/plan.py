"""The grid's plan: the work cut into units, one question × one retrieval group.

A *retrieval group* is the configurations equal on the pipeline's ``retrieval_keys``: a unit retrieves once
and then renders and generates once per configuration. Units come in a stable order (question, then first
appearance of the retrieval settings), so every process, on every machine, numbers them alike.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from autorag_hp.types import QAItem


def question_id(item: QAItem) -> str:
    """A question's id in the table: its own, or 12 hex digits of SHA-1 over its text."""
    return item.id or hashlib.sha1(item.question.encode("utf-8")).hexdigest()[:12]


def canonical_json(obj: Any) -> str:
    """The JSON the grid keys on (retrieval groups, answer-cache keys, the recorded pipeline): sorted keys."""
    return json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False)


@dataclass(frozen=True)
class Unit:
    """One question × one retrieval group: retrieval runs once, generation once per configuration."""

    index: int
    item: QAItem
    configs: tuple[Any, ...]  # Config objects (Mapping with .id)

    @property
    def qid(self) -> str:
        return question_id(self.item)

    def keys(self) -> list[tuple[str, str]]:
        return [(c.id, self.qid) for c in self.configs]


def plan(configs: Sequence[Any], items: Sequence[QAItem], retrieval_keys: Iterable[str] | None) -> list[Unit]:
    """Units in a stable order (question, then first appearance of the retrieval settings). Configurations equal
    on ``retrieval_keys`` share a unit; with None (the pipeline does not say), each configuration is its own."""
    rk = None if retrieval_keys is None else tuple(retrieval_keys)
    groups: dict[str, list[Any]] = {}
    for c in configs:
        groups.setdefault(canonical_json(dict(c) if rk is None else {k: c[k] for k in rk if k in c}), []).append(c)
    units = []
    for item in items:
        for members in groups.values():
            units.append(Unit(len(units), item, tuple(members)))
    return units
