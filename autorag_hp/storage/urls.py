"""The one place a database location becomes an SQLAlchemy URL (the tuner's storage, grid tables, Optuna).

* ``postgresql://`` / ``postgres://`` get the psycopg 3 driver (``postgresql+psycopg://``), the driver we
  install; when only psycopg2 is importable they are left to SQLAlchemy's default (psycopg2).
* URLs with an explicit driver (``postgresql+psycopg2://``), ``sqlite://`` and any other scheme pass unchanged.
* With ``paths=True`` a plain path (``grid.sqlite``) becomes ``sqlite:///<absolute path>``, its folder created.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

_POSTGRES = ("postgresql://", "postgres://")


def database_url(target: str | os.PathLike, *, paths: bool = False) -> str:
    """``target`` as an SQLAlchemy URL (see the module docstring)."""
    s = str(target)
    if s.startswith(_POSTGRES):
        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            return s
        return "postgresql+psycopg://" + s.split("://", 1)[1]
    if "://" in s or not paths:
        return s
    Path(s).parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(s).resolve()}"
