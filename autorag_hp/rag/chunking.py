"""Chunking with LangChain's ``RecursiveCharacterTextSplitter``; ``chunk_size``/``chunk_overlap`` count characters.

Separators prefer paragraph, line and sentence boundaries, including Chinese sentence punctuation (。！？；),
so a Chinese text is not cut in the middle of a sentence when a boundary is available.

>>> from autorag_hp.rag.data import Document
>>> chunks = split_documents([Document("a", "One. Two. Three. " * 20)], chunk_size=60, chunk_overlap=0)
>>> len(chunks) > 1 and all(len(c.text) <= 60 and c.source == "a" for c in chunks)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autorag_hp.rag.data import Document
from autorag_hp.rag.errors import InvalidConfigError

SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", ". ", "! ", "? ", "; ", "，", ", ", " ", ""]


@dataclass(frozen=True)
class Chunk:
    """A piece of a document: ``source`` is the document id, ``id`` is ``source::n``."""

    id: str
    source: str
    text: str


def check_chunking(chunk_size: int, chunk_overlap: int) -> None:
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 16:
        raise InvalidConfigError(f"chunk_size must be an integer >= 16 (characters), got {chunk_size!r}")
    if not isinstance(chunk_overlap, int) or isinstance(chunk_overlap, bool) or not 0 <= chunk_overlap < chunk_size:
        raise InvalidConfigError(
            f"chunk_overlap must be an integer in [0, chunk_size={chunk_size}), got {chunk_overlap!r}"
        )


def split_documents(docs: Sequence[Document], chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """Split every document into chunks of at most ``chunk_size`` characters (deterministic)."""
    check_chunking(chunk_size, chunk_overlap)
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        separators=SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )
    out: list[Chunk] = []
    for doc in docs:
        for i, piece in enumerate(p for p in splitter.split_text(doc.text) if p.strip()):
            out.append(Chunk(f"{doc.id}::{i}", doc.id, piece))
    return out
