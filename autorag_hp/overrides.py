"""Overrides of a pipeline's search space from the command line: ``--space`` and ``--set``, one meaning everywhere.

``tune`` and ``serve`` declare both through :func:`add_arguments`; ``grid`` takes ``--space``.

- ``--space SPACE``: the space to tune instead of the spec's, inline JSON (``'{"top_k": [1, 3]}'``) or a
  YAML/JSON file (a pipeline spec file works too: its ``space:`` section is used).
- ``--set KEY=VALUE`` (repeatable): pin a pipeline config key for every question, e.g. ``--set embedding=bm25``;
  a pinned key that the space tunes leaves the space (values are parsed as YAML: ``top_k=3`` is the number 3).

>>> space, fixed = tuned_space({"retrieval": {"top_k": [1, 3], "embedding": ["bm25", "e5"]}}, {"embedding": "bm25"})
>>> space.names, fixed
(['top_k'], {'embedding': 'bm25'})
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SPACE_HELP = ("search space to tune instead of the pipeline's: JSON, e.g. '{\"top_k\": [1, 3, 5]}', or a YAML/JSON "
              "file (a pipeline spec's space: section works too)")
SET_HELP = ("pin a pipeline config key for every question, e.g. --set embedding=bm25 (repeatable); a pinned key "
            "leaves the search space")


def add_arguments(group: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Declare ``--space`` and ``--set`` (stored as ``args.space`` and ``args.fixed``)."""
    group.add_argument("--space", default=None, help=SPACE_HELP)
    group.add_argument("--set", action="append", metavar="KEY=VALUE", dest="fixed", help=SET_HELP)


def parse_json_arg(text: str | None, what: str) -> Any:
    """A JSON value given inline, or the path of a JSON/YAML file."""
    if text is None:
        return None
    p = Path(text)
    if not text.lstrip().startswith(("{", "[")) and p.is_file():
        import yaml

        return yaml.safe_load(p.read_text())
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what}: not JSON and not a file: {text[:80]!r} ({exc})") from None


def space_arg(text: str | None) -> dict[str, Any] | None:
    """The ``--space`` value as a space spec (grouped or flat mapping), or None when not given."""
    spec = parse_json_arg(text, "--space")
    if isinstance(spec, Mapping) and isinstance(spec.get("space"), Mapping):
        spec = spec["space"]  # a pipeline spec file
    if spec is not None and not isinstance(spec, Mapping):
        raise ValueError(f"--space: expected a mapping of parameters to value lists, got {type(spec).__name__}")
    return dict(spec) if spec is not None else None


def config_pairs(pairs: list[str] | None) -> dict[str, Any]:
    """``["embedding=bm25", "top_k=3"]`` → ``{"embedding": "bm25", "top_k": 3}`` (values parsed as YAML)."""
    import yaml

    out: dict[str, Any] = {}
    for item in pairs or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"--set takes KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def tuned_space(space: Any, fixed: Mapping[str, Any] | None = None, pipeline: Any = None):
    """``(SearchSpace, fixed)``: ``space`` (a spec mapping, a SearchSpace, or None for ``pipeline.space``) without
    the keys that ``fixed`` pins. With a ``pipeline`` every pinned value and every value of the space is checked
    by ``pipeline.resolve_config`` (when it has one), so a bad value fails before any tuning."""
    from autorag_hp.errors import InvalidSpaceError
    from autorag_hp.space import SearchSpace

    fixed = dict(fixed or {})
    if space is None:
        if pipeline is None:
            raise ValueError("tuned_space: give a space or a pipeline")
        space = pipeline.space
    full = SearchSpace(space)
    spec: dict[str, Any] = {}
    for key, value in full.to_dict().items():
        if isinstance(value, Mapping):
            kept = {n: v for n, v in value.items() if n not in fixed}
            if kept:
                spec[key] = kept
        elif key not in fixed:
            spec[key] = value
    if not spec:
        raise InvalidSpaceError(f"--set pins every tuned parameter ({', '.join(full.names)}); nothing is left to "
                                "tune: pin fewer keys or give a --space")
    result = SearchSpace(spec)
    check = getattr(pipeline, "resolve_config", None)
    if check is not None:
        check(fixed)
        for p in result.params:  # every value must be one the pipeline accepts
            for v in p.values:
                check({**fixed, p.name: v})
    return result, fixed


def space_without(space: Any, name: str, values: set) -> str:
    """The override that leaves ``values`` of parameter ``name`` out of ``space``: ``--set NAME=V`` when one value
    is left, else ``--space '<JSON>'``; empty when ``name`` is not tuned or nothing would be left."""
    from autorag_hp.space import SearchSpace

    s = SearchSpace(space)
    if name not in s.names:
        return ""
    kept = [v for v in s[name].values if v not in values]
    if not kept:
        return ""
    if len(kept) == 1:
        return f"--set {name}={kept[0]}"
    spec = s.to_dict()
    group = s[name].group
    (spec[group] if group is not None else spec)[name] = kept
    return "--space '" + json.dumps(spec) + "'"
