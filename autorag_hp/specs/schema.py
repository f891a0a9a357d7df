"""The pipeline YAML's schema as pydantic models: an unknown or misspelled key at any level is an error that names
the key, where it is, the nearest known key and the keys allowed there.

>>> spec = validate_pipeline_spec({"corpus": {"bundled": "python_docs_faq"}, "generator": {"type": "extractive"}})
>>> spec["generator"]
{'type': 'extractive'}
>>> validate_pipeline_spec({"corpus": "docs/", "generator": {"type": "local", "max_tokens": 10}})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
autorag_hp.rag.errors.PipelineSpecError: pipeline spec: generator.max_tokens: unknown key; max_tokens is a pipeline config key: put it under defaults: (as max_new_tokens); allowed here: type, model, ...

The models check the shape (which keys, which types of section); the values of ``defaults`` and ``space`` are
checked where they are used (:meth:`autorag_hp.rag.pipeline.RAGPipeline.resolve_config`,
:class:`autorag_hp.space.SearchSpace`), and the local generator's options by
:class:`autorag_hp.generators.accel.AccelerationOptions`. Importing this module costs pydantic (~0.1 s): the
loader imports it when it reads a YAML, never at start-up.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Mapping
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from autorag_hp.rag.errors import PipelineSpecError
from autorag_hp.rag.generation import EXTRACTIVE, LOCAL


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class DataRef(_Strict):
    """``{bundled: NAME}`` or ``{path: PATH}`` (exactly one)."""

    bundled: str | None = None
    path: str | None = None

    @model_validator(mode="after")
    def _one(self) -> DataRef:
        if (self.bundled is None) == (self.path is None):
            raise ValueError("give exactly one of {bundled: NAME} or {path: PATH}")
        return self


class Retrieval(_Strict):
    hybrid_dense: str = "e5"


class Limits(_Strict):
    max_question_chars: int = Field(2000, ge=1)


class ExtractiveGeneratorSpec(_Strict):
    """The extractive generator takes no options."""

    type: Literal[EXTRACTIVE]  # type: ignore[valid-type]


@cache
def local_generator_keys() -> tuple[str, ...]:
    """The options of ``generator: {type: local, ...}``: LocalGenerator's keywords and the acceleration options it
    accepts as keywords, read from their signatures (one place: the generator itself)."""
    from autorag_hp.generators.accel import AccelerationOptions
    from autorag_hp.generators.local import LocalGenerator

    own = [n for n, p in inspect.signature(LocalGenerator.__init__).parameters.items()
           if n not in ("self", "capabilities", "acceleration") and p.kind is not inspect.Parameter.VAR_KEYWORD]
    return tuple(own + [f.name for f in dataclasses.fields(AccelerationOptions)])


@cache
def _local_model() -> type[BaseModel]:
    fields: dict[str, Any] = {k: (Any, None) for k in local_generator_keys()}
    return create_model("LocalGeneratorSpec", __base__=_Strict, type=(Literal[LOCAL], "local"), **fields)


@cache
def _defaults_model() -> type[BaseModel]:
    from autorag_hp.rag.pipeline import CONFIG_KEYS  # the pipeline's config keys: one list

    return create_model("Defaults", __base__=_Strict, **{k: (Any, None) for k in CONFIG_KEYS})


@cache
def pipeline_model() -> type[BaseModel]:
    """The pydantic model of a whole pipeline YAML (``corpus``, ``questions`` and ``generator`` take several
    forms and are checked by their own models: :class:`DataRef`, the generator models)."""
    return create_model(
        "PipelineSpec", __base__=_Strict,
        name=(str | None, None), description=(str | None, None),
        corpus=(Any, None), questions=(Any, None), generator=(Any, None),
        retrieval=(Retrieval | None, None), limits=(Limits | None, None),
        defaults=(_defaults_model() | None, None), space=(dict[str, Any] | None, None),
    )


# keys that belong somewhere else than where a user tends to write them
_ELSEWHERE = {"temperature": "defaults: or space:", "max_new_tokens": "defaults: or space:",
              "max_tokens": "defaults: (as max_new_tokens)", "top_k": "defaults: or space:",
              "prompt": "defaults: or space:"}


def _messages(e: ValidationError, prefix: tuple[str, ...], model: type[BaseModel]) -> list[str]:
    """One line per error of ``e`` (raised by ``model`` for the section at ``prefix``)."""
    sections = {name: f.annotation for name, f in model.model_fields.items()}
    lines = []
    for err in e.errors():
        loc = (*prefix, *(str(x) for x in err["loc"]))
        dotted = ".".join(loc)
        if err["type"] != "extra_forbidden":
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{dotted}: {msg[:1].lower()}{msg[1:]} (got {err.get('input')!r})")
            continue
        key, owner = loc[-1], model
        if len(err["loc"]) > 1:  # inside a nested section model (retrieval:, limits:, defaults:)
            owner = next((a for a in getattr(sections.get(str(err["loc"][0])), "__args__", ())
                          if isinstance(a, type) and issubclass(a, BaseModel)), model)
        allowed = list(owner.model_fields)
        near = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
        if key in _ELSEWHERE:
            hint = f"; {key} is a pipeline config key: put it under {_ELSEWHERE[key]}"
        else:
            hint = f"; did you mean {near[0]!r}?" if near else ""
        here = f"allowed here: {', '.join(allowed)}" if allowed != ["type"] else "this generator takes no options"
        lines.append(f"{dotted}: unknown key{hint}; {here}")
    return lines


def _generator_model(gen: Any) -> type[BaseModel]:
    kind = gen.get("type", "local")
    if kind in EXTRACTIVE:
        return ExtractiveGeneratorSpec
    if kind in LOCAL:
        return _local_model()
    raise PipelineSpecError(f"generator.type: unknown generator {kind!r}; use one of {', '.join(EXTRACTIVE + LOCAL)}, "
                            "or pass a LangChain chat model / Generator object in Python")


def _check(model: type[BaseModel], value: Any, prefix: tuple[str, ...]) -> list[str]:
    try:
        model.model_validate(value)
    except ValidationError as e:
        return _messages(e, prefix, model)
    return []


def _generator_lines(gen: Any) -> list[str]:
    try:
        if isinstance(gen, str):
            _generator_model({"type": gen})
        elif isinstance(gen, Mapping):
            return _check(_generator_model(gen), dict(gen), ("generator",))
        elif gen is not None:
            return [f"generator: give a type name ({', '.join(EXTRACTIVE + LOCAL[:1])}) or a mapping "
                    f"{{type: local, ...}}, got {type(gen).__name__}"]
    except PipelineSpecError as e:
        return [str(e)]
    return []


def validate_generator_spec(gen: Any, where: str = "generator") -> Any:
    """A generator given apart from a YAML (``--generator``, ``load_pipeline(generator=...)``) checked like the
    YAML's ``generator:`` section; a Python object (a LangChain chat model, a Generator) passes unchecked."""
    if isinstance(gen, str | Mapping):
        lines = _generator_lines(gen)
        if lines:
            raise PipelineSpecError(f"{where}: " + "; ".join(lines))
    return gen


def validate_pipeline_spec(spec: Any, where: str = "pipeline spec") -> dict[str, Any]:
    """``spec`` (the parsed YAML) checked against the schema and returned as a dict; raises
    :class:`~autorag_hp.rag.errors.PipelineSpecError` naming every unknown key, its place, the nearest known key and
    the keys allowed there. ``where`` (the file) starts the message."""
    if not isinstance(spec, Mapping):
        raise PipelineSpecError(f"{where}: expected a mapping at the top level, got {type(spec).__name__}")
    spec = dict(spec)
    lines = _check(pipeline_model(), spec, ())
    for section in ("corpus", "questions"):
        value = spec.get(section)
        if isinstance(value, Mapping):
            lines += _check(DataRef, dict(value), (section,))
        elif value is not None and not isinstance(value, str):
            lines.append(f"{section}: give {{bundled: NAME}}, {{path: PATH}} or a path, got {type(value).__name__}")
    lines += _generator_lines(spec.get("generator"))
    if lines:
        raise PipelineSpecError(f"{where}: " + "; ".join(dict.fromkeys(lines)))
    return spec
