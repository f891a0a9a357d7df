"""Search spaces and configurations.

A :class:`SearchSpace` is an ordered set of :class:`Param` s, each with a finite list of values, optionally
grouped (``retrieval``, ``generation``). A :class:`Config` is one value per parameter: an immutable,
hashable mapping with a stable :attr:`Config.id` (a SHA-1 of its canonical JSON, identical in every process,
unlike Python's ``hash()``) that round-trips through JSON.

>>> space = SearchSpace({"retrieval": {"top_k": [1, 3, 5]}, "generation": {"temperature": [0.0, 0.7]}})
>>> space.size
6
>>> cfg = space.config({"top_k": 3, "temperature": 0.0})
>>> cfg["top_k"], len(cfg.id)
(3, 12)
>>> Config.from_json(cfg.to_json()) == cfg
True
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autorag_hp.errors import InvalidConfigError, InvalidSpaceError

Scalar = str | int | float | bool | None


def _canon(value: Any) -> str:
    """Canonical JSON of a value: distinguishes 1 from 1.0 from True, and sorts keys."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _check_scalar(param: str, value: Any) -> Scalar:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidSpaceError(f"parameter {param!r}: value {value!r} is not finite; use finite numbers")
    if value is not None and not isinstance(value, str | int | float | bool):
        raise InvalidSpaceError(
            f"parameter {param!r}: value {value!r} has type {type(value).__name__}; "
            "values must be strings, numbers, booleans or null"
        )
    return value


class Config(Mapping):
    """An immutable configuration: parameter name -> value, with a stable id.

    Equality and hashing use the canonical JSON, so ``Config({"k": 1}) != Config({"k": 1.0})``.
    """

    __slots__ = ("_items", "_json", "_id", "_hash")

    def __init__(self, values: Mapping[str, Scalar]):
        items = dict(sorted(values.items()))
        for k, v in items.items():
            if not isinstance(k, str):
                raise InvalidConfigError(f"parameter names must be strings, got {k!r}")
            _check_scalar(k, v)
        self._items = items
        self._json = _canon(items)
        self._id = hashlib.sha1(self._json.encode("utf-8")).hexdigest()[:12]
        self._hash = hash(self._json)

    @property
    def id(self) -> str:
        """12 hex digits of SHA-1 over the canonical JSON: the same in every process and on every machine."""
        return self._id

    def __getitem__(self, key: str) -> Scalar:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Config):
            return self._json == other._json
        if isinstance(other, Mapping):
            try:
                return self._json == _canon(dict(sorted(other.items())))
            except (TypeError, ValueError):
                return False
        return NotImplemented

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self._items.items())
        return f"Config({body})"

    def __reduce__(self):
        return (Config, (self._items,))

    def to_dict(self) -> dict[str, Scalar]:
        return dict(self._items)

    def to_json(self) -> str:
        return self._json

    @classmethod
    def from_json(cls, text: str | bytes) -> Config:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise InvalidConfigError(f"a Config's JSON must be an object, got {type(data).__name__}")
        return cls(data)

    def replace(self, **changes: Scalar) -> Config:
        d = dict(self._items)
        d.update(changes)
        return Config(d)


@dataclass(frozen=True)
class Param:
    """One hyper-parameter: a name, its finite list of values (order kept), and the group it belongs to."""

    name: str
    values: tuple[Scalar, ...]
    group: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidSpaceError(f"a parameter name must be a non-empty string, got {self.name!r}")
        if not self.values:
            raise InvalidSpaceError(f"parameter {self.name!r} has no values; give at least one")
        keys = [_canon(_check_scalar(self.name, v)) for v in self.values]
        if len(set(keys)) != len(keys):
            dup = sorted({k for k in keys if keys.count(k) > 1})
            raise InvalidSpaceError(f"parameter {self.name!r} lists a value more than once: {', '.join(dup)}")
        object.__setattr__(self, "_index", {k: i for i, k in enumerate(keys)})

    def index(self, value: Any) -> int:
        """Position of ``value`` in this parameter's values (type-exact: 1 is not 1.0)."""
        try:
            return self._index[_canon(value)]  # type: ignore[attr-defined]
        except (KeyError, TypeError, ValueError):
            raise InvalidConfigError(
                f"value {value!r} is not allowed for parameter {self.name!r}; allowed: {list(self.values)}"
            ) from None

    def __len__(self) -> int:
        return len(self.values)


class SearchSpace:
    """A finite, ordered product of parameters.

    ``spec`` is either grouped, ``{"retrieval": {"top_k": [1, 3]}, "generation": {...}}``, or flat,
    ``{"top_k": [1, 3], "temperature": [0.0]}``. Parameter names are unique across groups.
    """

    def __init__(self, spec: Mapping[str, Any] | SearchSpace):
        if isinstance(spec, SearchSpace):
            spec = spec.to_dict()
        if not isinstance(spec, Mapping) or not spec:
            raise InvalidSpaceError("the search space is empty; give at least one parameter with its values")
        params: list[Param] = []
        for key, value in spec.items():
            if isinstance(value, Mapping):
                if not value:
                    raise InvalidSpaceError(f"group {key!r} is empty; give it parameters or remove it")
                for name, values in value.items():
                    params.append(Param(name, self._values(name, values), group=str(key)))
            else:
                params.append(Param(key, self._values(key, value)))
        names = [p.name for p in params]
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise InvalidSpaceError(f"parameter names must be unique across groups; repeated: {dups}")
        self.params: tuple[Param, ...] = tuple(params)
        self._by_name = {p.name: p for p in self.params}
        self._radix = [len(p) for p in self.params]
        self.size = math.prod(self._radix)
        self.fingerprint = hashlib.sha1(_canon(self.to_dict()).encode()).hexdigest()[:16]
        self._cache: dict[int, Config] = {}
        self._id_rank: Any = None  # numpy array, built on first use

    @staticmethod
    def _values(name: str, values: Any) -> tuple[Scalar, ...]:
        if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
            raise InvalidSpaceError(
                f"parameter {name!r}: expected a list of values, got {type(values).__name__} {values!r}"
            )
        return tuple(values)

    # --- construction ---------------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> SearchSpace:
        """Load a space from YAML or JSON of the same shape as the constructor's ``spec``.

        A top-level ``space:`` key is accepted too, so a pipeline spec file can be passed directly.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"search space file {str(path)!r} does not exist")
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
        if isinstance(data, dict) and "space" in data and isinstance(data["space"], Mapping):
            data = data["space"]
        if not isinstance(data, Mapping):
            raise InvalidSpaceError(f"{path}: expected a mapping of parameters (or groups), got {type(data).__name__}")
        return cls(data)

    def to_dict(self) -> dict[str, Any]:
        """The spec this space was built from (grouped when any parameter has a group)."""
        out: dict[str, Any] = {}
        for p in self.params:
            if p.group is None:
                out[p.name] = list(p.values)
            else:
                out.setdefault(p.group, {})[p.name] = list(p.values)
        return out

    # --- queries --------------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def __getitem__(self, name: str) -> Param:
        try:
            return self._by_name[name]
        except KeyError:
            raise InvalidConfigError(f"unknown parameter {name!r}; the space has {self.names}") from None

    def __contains__(self, config: object) -> bool:
        try:
            self.validate(config)  # type: ignore[arg-type]
        except (InvalidConfigError, TypeError):
            return False
        return True

    def __len__(self) -> int:
        return self.size

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and other.fingerprint == self.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        inner = ", ".join(f"{p.name}[{len(p)}]" for p in self.params)
        return f"SearchSpace({inner}; {self.size} configurations)"

    def validate(self, values: Mapping[str, Any]) -> Config:
        """Check that ``values`` gives exactly one allowed value for every parameter; return the Config."""
        if not isinstance(values, Mapping):
            raise InvalidConfigError(f"a configuration must be a mapping, got {type(values).__name__}")
        unknown = [k for k in values if k not in self._by_name]
        if unknown:
            raise InvalidConfigError(f"unknown parameter(s) {unknown}; the space has {self.names}")
        missing = [n for n in self.names if n not in values]
        if missing:
            raise InvalidConfigError(f"configuration is missing parameter(s) {missing}")
        for p in self.params:
            p.index(values[p.name])
        return values if isinstance(values, Config) else Config(values)

    config = validate

    def index(self, config: Mapping[str, Any]) -> int:
        """Position of ``config`` in the mixed-radix order of :meth:`configs` (first parameter slowest)."""
        self.validate(config)
        idx = 0
        for p, r in zip(self.params, self._radix):
            idx = idx * r + p.index(config[p.name])
        return idx

    def config_at(self, index: int) -> Config:
        """The configuration at ``index`` in :meth:`configs` order (cached)."""
        cfg = self._cache.get(index)
        if cfg is not None:
            return cfg
        if not 0 <= index < self.size:
            raise IndexError(f"configuration index {index} outside 0..{self.size - 1}")
        rest = index
        digits = []
        for r in reversed(self._radix):
            rest, d = divmod(rest, r)
            digits.append(d)
        digits.reverse()
        cfg = Config({p.name: p.values[d] for p, d in zip(self.params, digits)})
        if len(self._cache) < 1_000_000:
            self._cache[index] = cfg
        return cfg

    def id_rank(self) -> Any:
        """Each configuration's position in the sorted order of configuration ids (cached): the deterministic
        tie-break of every ranking."""
        rank = self._id_rank
        if rank is None:
            import numpy as np

            ids = [self.config_at(i).id for i in range(self.size)]
            rank = np.empty(self.size, dtype=np.int64)
            rank[np.argsort(ids, kind="stable")] = np.arange(self.size)
            self._id_rank = rank
        return rank

    def configs(self) -> Iterator[Config]:
        """Every configuration, first parameter varying slowest."""
        for i in range(self.size):
            yield self.config_at(i)

    def digits(self, config: Mapping[str, Any]) -> tuple[int, ...]:
        """The value index of each parameter in ``config``."""
        return tuple(p.index(config[p.name]) for p in self.params)
