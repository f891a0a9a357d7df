"""How a spec and its questions refer to data, checked so that no mistake passes silently.

- :func:`resolve_data_path`: a relative path is looked up in the working directory first, then beside the spec
  that names it; the error names both places, and a path found in both (different) places warns;
- :func:`check_gold_sources`: every gold source is the id of a document of the corpus (near matches are listed);
- :func:`corpus_label`: the short name of what a corpus spec points at, for a pipeline's name.

>>> from autorag_hp.rag.data import Document
>>> check_gold_sources([QAItem("q?", sources=("guide/instal.md",), id="q1")], [Document("guide/install.md", "x")])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
autorag_hp.rag.errors.CorpusError: 1 gold source(s) in the questions match no document of the corpus (1 documents): 'q1': 'guide/instal.md' (near: 'guide/install.md'). ...
"""

from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from autorag_hp.rag.data import Document
from autorag_hp.rag.errors import CorpusError
from autorag_hp.types import QAItem


def resolve_data_path(value: str | os.PathLike, base: str | os.PathLike | None, what: str = "corpus") -> Path:
    """The file or folder ``value`` names: as given (absolute, or relative to the working directory) when it exists,
    else relative to ``base`` (the folder of the spec that names it); else a :class:`CorpusError` naming every place
    tried. ``what`` (``corpus``, ``questions``) starts the message."""
    p = Path(value).expanduser()
    if p.exists() or p.is_absolute():
        beside = Path(base) / p if base is not None and not p.is_absolute() else None
        if beside is not None and beside.exists() and beside.resolve() != p.resolve():
            warnings.warn(f"{what} {str(value)!r} exists both in the working directory ({str(Path.cwd() / p)!r}) and "
                          f"beside the pipeline spec ({str(beside)!r}); using the working directory's. Give an "
                          "absolute path to choose", stacklevel=2)
        return p
    tried = [Path.cwd() / p]
    if base is not None:
        beside = Path(base) / p
        if beside.exists():
            return beside
        tried.append(beside)
    places = " and ".join(f"{str(t)!r}" for t in tried)
    where = "the working directory" + (" and beside the pipeline spec" if base is not None else "")
    raise CorpusError(f"{what} {str(value)!r} does not exist: looked in {where} ({places}); give an existing path, "
                      "absolute or relative to one of those")


def corpus_label(spec: object) -> str:
    """A short name for what a corpus spec points at: ``my_docs`` for ``"path/to/my_docs/"``, the bundled name for
    ``{bundled: python_docs}``, ``"3 documents"`` for a list."""
    if isinstance(spec, dict) and len(spec) == 1:
        spec = next(iter(spec.values()))
    if isinstance(spec, str | os.PathLike):
        name = Path(spec).name
        for suffix in (".gz", ".jsonl", ".json"):
            name = name.removesuffix(suffix)
        return name or str(spec)
    if isinstance(spec, list | tuple):
        return f"{len(spec)} documents"
    return type(spec).__name__


def check_gold_sources(questions: Sequence[QAItem], docs: Sequence[Document], where: str = "the questions") -> None:
    """Every gold source of every question must be the id of a document of ``docs``; otherwise a
    :class:`CorpusError` listing each unknown source (up to 10) with its near matches, so a typo such as
    ``"instal.md"`` does not silently score an MRR of 0."""
    ids = {d.id for d in docs}
    bad = [(q, s) for q in questions for s in q.sources if s not in ids]
    if not bad:
        return
    by_name: dict[str, list[str]] = {}
    for doc_id in ids:
        by_name.setdefault(doc_id.rsplit("/", 1)[-1], []).append(doc_id)
    lines = []
    for q, src in bad[:10]:
        near = sorted(by_name.get(src.rsplit("/", 1)[-1], []))[:3] or difflib.get_close_matches(src, ids, n=3)
        hint = f" (near: {', '.join(repr(n) for n in near)})" if near else " (no document id is close)"
        lines.append(f"{q.id or q.question[:40]!r}: {src!r}{hint}")
    more = f", and {len(bad) - 10} more" if len(bad) > 10 else ""
    raise CorpusError(
        f"{len(bad)} gold source(s) in {where} match no document of the corpus ({len(ids)} documents): "
        + "; ".join(lines) + more + ". A source is a document id: for a folder corpus the file's path relative to the "
        "folder (e.g. 'guide/install.md'), for a JSONL corpus its 'id'; fix the 'sources' of those questions")
