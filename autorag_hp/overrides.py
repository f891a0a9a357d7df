"""Overrides of a pipeline's search space from the command line: ``--space`` and ``--set``, one meaning everywhere.

``tune`` and ``serve`` declare both through :func:`add_arguments`; ``grid`` takes ``--space``.

- ``--space SPACE``: the space to tune instead of the spec's, inline JSON (``'{"top_k": [1, 3]}'``) or a
  YAML/JSON file (a pipeline spec file works too: its ``space:`` section is used).
- ``--set KEY=VALUE`` (repeatable): pin a pipeline config key for every question, e.g. ``--set embedding=bm25``;
  a pinned key that the space tunes leaves the space (values are parsed as YAML: ``top_k=3`` is the number 3).

With a pipeline, :func:`tuned_space` also fits the space to it, each change printed as a notice: the pipeline's
default space is adapted to the language of its corpus (:func:`autorag_hp.rag.language.language_space`: for a
Chinese corpus e5, jieba BM25 and hybrid, without the English-only MiniLM / mpnet), and parameters the generator
ignores (``prompt`` and ``temperature`` for the extractive generator) leave any space.

>>> space, fixed = tuned_space({"retrieval": {"top_k": [1, 3], "embedding": ["bm25", "e5"]}}, {"embedding": "bm25"})
>>> space.names, fixed
(['top_k'], {'embedding': 'bm25'})
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
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


def _notice(text: str) -> None:
    print(text, file=sys.stderr)


def generator_ignores(pipeline: Any) -> tuple[str, ...]:
    """Config keys the pipeline's generator never reads (``("prompt", "temperature")`` for the extractive one), told
    from its spec without building it; a generator object may declare its own ``ignores``."""
    spec = getattr(pipeline, "generator_spec", None)
    kind = spec if isinstance(spec, str) else spec.get("type", "local") if isinstance(spec, Mapping) else None
    if kind == "extractive":
        from autorag_hp.rag.generation import ExtractiveGenerator

        return tuple(ExtractiveGenerator.ignores)
    return tuple(getattr(spec, "ignores", ()) or ()) if kind is None else ()


def _for_language(spec: dict[str, Any], fixed: dict[str, Any], pipeline: Any, default: bool,
                  notify: Callable[[str], None]) -> dict[str, Any]:
    """The space for the language of the pipeline's corpus (a pipeline without ``docs`` is left alone)."""
    from autorag_hp.rag.language import ENGLISH_ONLY_EMBEDDINGS, corpus_language, language_space

    docs = getattr(pipeline, "docs", None)
    if not docs:
        return spec
    lang, share = corpus_language(getattr(d, "text", str(d)) for d in docs)
    if lang != "zh":
        return spec
    dense = getattr(getattr(pipeline, "index", None), "hybrid_dense", "e5")
    if default:
        spec, note = language_space(spec, "zh", dense)
        if note:
            notify(note.replace("the corpus is Chinese", f"the corpus is Chinese ({share:.0%} of its letters CJK)"))
    english = set(ENGLISH_ONLY_EMBEDDINGS) | ({"hybrid"} if dense in ENGLISH_ONLY_EMBEDDINGS else set())
    tuned = next((g["embedding"] for g in [spec, *spec.values()] if isinstance(g, Mapping) and "embedding" in g), [])
    pinned = fixed.get("embedding", None if tuned else (getattr(pipeline, "defaults", None) or {}).get("embedding"))
    bad = sorted({*(e for e in tuned if e in english), *([pinned] if pinned in english else [])})
    if bad:
        notify(f"note: the corpus is Chinese ({share:.0%} of its letters CJK) but embedding {', '.join(bad)} is "
               "English-only (R@1 0.11 for MiniLM on a Chinese FAQ, e5 0.48); prefer --set embedding=e5, bm25 or "
               "hybrid")
    return spec


def tuned_space(space: Any, fixed: Mapping[str, Any] | None = None, pipeline: Any = None,
                notify: Callable[[str], None] | None = None):
    """``(SearchSpace, fixed)``: ``space`` (a spec mapping, a SearchSpace, or None for ``pipeline.space``) without
    the keys that ``fixed`` pins. With a ``pipeline``: the default space (``space=None``) fits the language of its
    corpus, the parameters its generator ignores leave the space (:func:`generator_ignores`), each change told
    through ``notify`` (default: printed to stderr), and every pinned value and every value of the space is
    checked by ``pipeline.resolve_config`` (when it has one), so a bad value fails before any tuning."""
    from autorag_hp.errors import InvalidSpaceError
    from autorag_hp.space import SearchSpace

    notify = notify or _notice
    fixed = dict(fixed or {})
    default = space is None
    if default:
        if pipeline is None:
            raise ValueError("tuned_space: give a space or a pipeline")
        space = pipeline.space
    full = SearchSpace(space)
    ignored = [n for n in generator_ignores(pipeline) if n in full.names and n not in fixed]
    spec: dict[str, Any] = {}
    for key, value in full.to_dict().items():
        if isinstance(value, Mapping):
            kept = {n: v for n, v in value.items() if n not in fixed and n not in ignored}
            if kept:
                spec[key] = kept
        elif key not in fixed and key not in ignored:
            spec[key] = value
    if not spec:
        why = [f"--set pins {', '.join(n for n in full.names if n in fixed)}"] if set(fixed) & set(full.names) else []
        why += [f"the generator ignores {', '.join(ignored)}"] if ignored else []
        raise InvalidSpaceError(f"{' and '.join(why)}, every parameter the space tunes ({', '.join(full.names)}): "
                                "nothing is left to tune; pin fewer keys or give a --space")
    if pipeline is not None:
        spec = _for_language(spec, fixed, pipeline, default, notify)
    result = SearchSpace(spec)
    if ignored:
        gen = getattr(pipeline, "generator_spec", None)
        name = gen if isinstance(gen, str) else gen.get("type") if isinstance(gen, Mapping) else type(gen).__name__
        notify(f"note: the {name} generator ignores {' and '.join(ignored)}: left out of the search space "
               f"({full.size} -> {result.size} configurations)")
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
