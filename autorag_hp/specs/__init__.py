"""The bundled pipeline and reward specs, and the one resolver every command uses to find a spec.

The YAML files ship inside the package (``autorag_hp/specs/pipelines/``, ``autorag_hp/specs/rewards/``), so a
wheel runs ``autorag-hp tune`` / ``demo`` without the repository checkout. Refer to them by name::

    autorag-hp tune --pipeline python_docs_faq
    autorag-hp serve --pipeline python_docs --reward python_docs_w0.5

Rules (:func:`resolve`), in order:

1. an existing file wins: an absolute path, or a relative path looked up in the current working directory;
2. then, when the caller has a base folder (a spec file's own folder), the path relative to it (data paths follow
   the same rule: :func:`autorag_hp.rag.data.resolve_data_path`);
3. then a bundled name: the file name without ``.yaml`` (``python_docs_faq``, ``python_docs_w0.5``);
   ``NAME.yaml`` is accepted too, a path with a folder in it is not (``pipelines/python_docs.yaml`` is not
   the bundled ``python_docs``: the folder does not exist);
4. else an error naming the places it looked and the bundled specs of that kind.

>>> bundled("pipeline")
['demo', 'python_docs', 'python_docs_faq']
>>> resolve("python_docs_faq", "pipeline").name
'python_docs_faq.yaml'
"""

from __future__ import annotations

import os
from pathlib import Path

from autorag_hp.errors import AutoRAGHPError

HERE = Path(__file__).resolve().parent
FOLDERS = {"pipeline": HERE / "pipelines", "reward": HERE / "rewards"}
SUFFIXES = (".yaml", ".yml")


class SpecNotFoundError(AutoRAGHPError, FileNotFoundError):
    """A spec is neither an existing file nor a bundled name."""


def _folder(kind: str) -> Path:
    try:
        return FOLDERS[kind]
    except KeyError:
        raise ValueError(f"unknown spec kind {kind!r}; kinds: {sorted(FOLDERS)}") from None


def bundled(kind: str) -> list[str]:
    """The names of the bundled specs of ``kind`` (``"pipeline"`` or ``"reward"``), sorted."""
    return sorted(p.name[: -len(p.suffix)] for p in _folder(kind).iterdir() if p.suffix in SUFFIXES)


def bundled_path(name: str, kind: str) -> Path | None:
    """The bundled spec file called ``name`` (``NAME`` or ``NAME.yaml``), or None."""
    if not name or os.sep in name or "/" in name:
        return None
    stem = name[: -len(Path(name).suffix)] if name.endswith(SUFFIXES) else name
    for suffix in SUFFIXES:
        p = _folder(kind) / f"{stem}{suffix}"
        if p.is_file():
            return p
    return None


def resolve(value: str | os.PathLike, kind: str, *, base: str | os.PathLike | None = None,
            error: type[Exception] = SpecNotFoundError) -> Path:
    """The spec file that ``value`` (a path or a bundled name) refers to; see the module docstring for the rules.

    ``error``: the exception class raised when nothing matches (callers pass their own spec-error class).
    """
    text = os.fspath(value)
    p = Path(text).expanduser()
    if p.is_file():
        return p
    if base is not None and not p.is_absolute() and (Path(base) / p).is_file():
        return Path(base) / p
    found = bundled_path(text, kind)
    if found is not None:
        return found
    names = ", ".join(bundled(kind))
    tried = [str(Path.cwd() / p)] + ([str(Path(base) / p)] if base is not None and not p.is_absolute() else [])
    places = " and ".join(repr(t) for t in tried)
    raise error(f"{kind} spec {text!r} is neither a file nor a bundled {kind} name (looked for the file at {places}); "
                f"bundled {kind}s: {names} (e.g. {bundled(kind)[-1]!r}), or give the path of your own YAML file")
