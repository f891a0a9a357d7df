"""Corpora and question sets: the bundled Python-docs benchmark and loaders for a user's own data.

A corpus is a list of :class:`Document` (``id``, ``text``); questions are :class:`~autorag_hp.types.QAItem`.

Bundled data (Debian's ``python3.11-doc``, PSF licence; questions are the FAQ headings that end in "?"):

- ``python_docs``: every ``.rst.txt`` source of the Python 3.11 documentation (497 files, 11 MB of text). FAQ
  files are split into sections (id ``faq/<file>.rst#<slug>``, question headings left out of the text);
  every other file is one document (id = its path, e.g. ``library/os.rst``);
- ``python_docs_faq``: the FAQ sections only (189 documents) with the same questions: the small, fast slice
  that ``make demo``, the tests and the ground-truth grid use.

>>> docs = load_bundled_corpus("python_docs_faq")
>>> qs = load_bundled_questions("python_docs_faq")
>>> len(qs) > 150 and all(q.sources[0] in {d.id for d in docs} for q in qs)
True

User data:

- ``load_corpus("my_docs/")``: every ``.txt``/``.md``/``.rst``/``.html`` file below the folder, id = relative path;
- ``load_corpus("corpus.jsonl")``: one ``{"id": ..., "text": ...}`` per line;
- ``load_questions("qa.jsonl")``: one ``{"question": ..., "answer"?: ..., "sources"?: [...]}`` per line; a key
  close to one of these (``"anwser"``) is an error naming the key it resembles, any other key a warning;

How a spec refers to data (paths, gold sources) is checked in :mod:`autorag_hp.rag.data_refs`.
"""

from __future__ import annotations

import difflib
import gzip
import hashlib
import html
import json
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from autorag_hp.rag.errors import CorpusError
from autorag_hp.types import QAItem

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst", ".html", ".htm")
# name -> (corpus file, questions file, id prefix that selects the slice or "" for all)
BUNDLED = {
    "python_docs": ("python_docs.corpus.jsonl.gz", "python_docs.qa.jsonl.gz", ""),
    "python_docs_faq": ("python_docs.corpus.jsonl.gz", "python_docs.qa.jsonl.gz", "faq/"),
}


@dataclass(frozen=True)
class Document:
    """One source document. ``id`` is what :class:`~autorag_hp.types.Context.source` reports."""

    id: str
    text: str
    meta: dict = field(default_factory=dict, compare=False, hash=False)


def corpus_fingerprint(docs: Sequence[Document]) -> str:
    """A stable 16-hex-digit digest of a corpus (ids and texts, order-independent)."""
    h = hashlib.sha1()
    for doc_id, text in sorted((d.id, d.text) for d in docs):
        h.update(doc_id.encode("utf-8") + b"\0" + hashlib.sha1(text.encode("utf-8")).digest())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------------------------------------
# reStructuredText sections (the Python docs are Sphinx sources)
_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+<>_:.])\1{2,}\s*$")
_ROLE = re.compile(r":[\w:.+-]+:`([^`<]*?)\s*(?:<[^>]*>)?`")
_LINK = re.compile(r"`([^`<]+?)\s*<[^>]+>`_{1,2}")
_LITERAL = re.compile(r"``([^`]+)``")


def clean_rst(text: str) -> str:
    """Light markup removal: roles and links keep their visible text, literals lose their backquotes."""
    text = re.sub(r":pep:`(\d+)`", r"PEP \1", text)
    text = _ROLE.sub(lambda m: m.group(1).lstrip("~!"), text)
    text = _LINK.sub(r"\1", text)
    text = _LITERAL.sub(r"\1", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def rst_sections(text: str) -> list[tuple[str, str]]:
    """Split reStructuredText into ``(heading, body)`` pairs; the text before the first heading has heading ''."""
    lines = text.splitlines()
    out: list[tuple[str, list[str]]] = [("", [])]
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        title = line.strip()
        if (
            title
            and not _UNDERLINE.match(line)
            and _UNDERLINE.match(nxt)
            and len(nxt.strip()) >= len(title)
            and not line.startswith((" ", "\t"))
        ):
            body = out[-1][1]
            if body and _UNDERLINE.match(body[-1]):  # overline of an over+underlined title
                body.pop()
            out.append((title, []))
            i += 2
            continue
        out[-1][1].append(line)
        i += 1
    return [(h, "\n".join(b).strip()) for h, b in out]


def slug(text: str) -> str:
    s = re.sub(r"[^\w]+", "-", text.lower(), flags=re.UNICODE).strip("-")
    return s[:80] or "section"


def _faq_sections(path: Path, rel: str) -> tuple[list[Document], list[QAItem]]:
    docs: list[Document] = []
    questions: list[QAItem] = []
    seen: dict[str, int] = {}
    for heading, body in rst_sections(path.read_text(encoding="utf-8")):
        body = clean_rst(body)
        if not body or body.startswith(".. only::") and len(body) < 60:
            continue
        s = slug(heading) if heading else "intro"
        seen[s] = seen.get(s, 0) + 1
        if seen[s] > 1:
            s = f"{s}-{seen[s]}"
        doc_id = f"{rel}#{s}"
        docs.append(Document(doc_id, body, {"file": rel, "section": heading}))
        if heading.endswith("?"):
            questions.append(QAItem(question=heading, answer=body, sources=(doc_id,), id=doc_id))
    return docs, questions


def python_docs_documents(sources_dir: str | Path) -> tuple[list[Document], list[QAItem]]:
    """Build the benchmark from a Sphinx ``_sources`` folder (Debian's python3.11-doc; passed explicitly).

    Corpus: every ``.rst.txt`` file. Each FAQ section becomes a document
    ``faq/<file>.rst#<slug>`` holding its body only: question headings are kept out of the indexed text, so
    retrieval must match a question to its answer, not to itself. Every other file is one document whose id is
    its path without ``.txt``. Questions: the FAQ headings that end in "?", gold source = their section.
    """
    root = Path(sources_dir)
    has_faq = any((root / "faq").glob("*.rst.txt"))
    if not has_faq:
        raise CorpusError(
            f"no faq/*.rst.txt under {str(root)!r}; install Debian's python3.11-doc "
            "(apt-get install python3.11-doc) or pass the folder that holds the Sphinx _sources"
        )
    files = sorted(root.rglob("*.rst.txt"), key=lambda f: f.relative_to(root).as_posix())
    docs: list[Document] = []
    questions: list[QAItem] = []
    for path in files:
        rel = path.relative_to(root).as_posix().removesuffix(".txt")
        if rel.startswith("faq/"):
            d, q = _faq_sections(path, rel)
            docs += d
            questions += q
            continue
        text = clean_rst(path.read_text(encoding="utf-8"))
        if text:
            docs.append(Document(rel, text, {"file": rel}))
    return docs, questions


def write_bundled(sources_dir: str | Path, out_dir: str | Path = DATA_DIR) -> tuple[Path, Path]:
    """(Re)build the bundled ``python_docs`` files from a Sphinx ``_sources`` folder.

    ``python -c "from autorag_hp.rag.data import write_bundled; write_bundled(SOURCES)"``, where ``SOURCES`` is the
    folder that ``dpkg -L python3.11-doc | grep '_sources$'`` prints (Debian's python3.11-doc; nothing else needs it).
    """
    docs, questions = python_docs_documents(sources_dir)
    out = Path(out_dir)
    corpus_name, qa_name, _ = BUNDLED["python_docs"]
    cpath, qpath = out / corpus_name, out / qa_name
    with gzip.GzipFile(cpath, "wb", compresslevel=9, mtime=0) as f:
        for d in docs:
            f.write((json.dumps({"id": d.id, "text": d.text, **d.meta}, ensure_ascii=False) + "\n").encode())
    with gzip.GzipFile(qpath, "wb", compresslevel=9, mtime=0) as f:
        for q in questions:
            row = {"id": q.id, "question": q.question, "answer": q.answer, "sources": list(q.sources)}
            f.write((json.dumps(row, ensure_ascii=False) + "\n").encode())
    return cpath, qpath


def _bundled(name: str) -> tuple[str, str, str]:
    try:
        return BUNDLED[name]
    except KeyError:
        raise CorpusError(f"no bundled data set {name!r}; bundled: {sorted(BUNDLED)}") from None


def load_bundled_corpus(name: str = "python_docs") -> list[Document]:
    """A bundled corpus: ``python_docs`` (all 497 sources) or ``python_docs_faq`` (FAQ sections only)."""
    corpus_file, _, prefix = _bundled(name)
    docs = load_corpus(DATA_DIR / corpus_file)
    return [d for d in docs if d.id.startswith(prefix)] if prefix else docs


def load_bundled_questions(name: str = "python_docs") -> list[QAItem]:
    return load_questions(DATA_DIR / _bundled(name)[1])


# --------------------------------------------------------------------------------------------------------
# user data
class _HTMLText(HTMLParser):
    _SKIP = {"script", "style", "head", "title", "noscript"}
    _BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "section", "dt", "dd"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skip += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    p = _HTMLText()
    p.feed(markup)
    text = html.unescape("".join(p.parts))
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CorpusError(f"cannot read {str(path)!r}: {e.strerror or e}; check that it exists and is readable") from e
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{str(path)!r} is not UTF-8 text ({e.reason} at byte {e.start}); convert it to UTF-8") from e


def _jsonl_rows(path: Path) -> Iterable[tuple[int, dict]]:
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path}:{n}: not valid JSON ({e.msg}); each line must be one JSON object") from e
        if not isinstance(row, dict):
            raise CorpusError(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
        yield n, row


#: the keys of a question line, and of a corpus line
QA_KEYS = ("question", "answer", "sources", "id")
CORPUS_KEYS = ("id", "text")


def _near(key: str, known: Sequence[str]) -> str | None:
    found = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
    return found[0] if found else None


def load_corpus(path: str | Path) -> list[Document]:
    """Load a corpus from a folder of text files or a JSONL file of ``{"id", "text"}``; empty → CorpusError."""
    p = Path(path)
    if not p.exists():
        raise CorpusError(f"corpus {str(p)!r} does not exist; give a folder of .txt/.md/.rst/.html files or a .jsonl")
    docs: list[Document] = []
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(TEXT_SUFFIXES))
        for f in files:
            text = _read_text(f)
            if f.name.lower().endswith((".html", ".htm")):
                text = html_to_text(text)
            if text.strip():
                docs.append(Document(f.relative_to(p).as_posix(), text.strip()))
        where = f"folder {str(p)!r} (looked for {', '.join(TEXT_SUFFIXES)} files)"
    else:
        ids: set[str] = set()
        for n, row in _jsonl_rows(p):
            text = row.get("text")
            if not isinstance(text, str):
                near = next((k for k in row if k not in CORPUS_KEYS and _near(k, CORPUS_KEYS) == "text"), None)
                hint = f" (found {near!r}: rename it to 'text')" if near else ""
                raise CorpusError(f"{p}:{n}: each line needs a string field 'text'{hint}")
            doc_id = str(row.get("id", f"doc{n}"))
            if doc_id in ids:
                raise CorpusError(f"{p}:{n}: duplicate id {doc_id!r}; document ids must be unique")
            ids.add(doc_id)
            if text.strip():
                meta = {k: v for k, v in row.items() if k not in ("id", "text")}
                docs.append(Document(doc_id, text.strip(), meta))
        where = f"file {str(p)!r}"
    if not docs:
        raise CorpusError(f"the corpus in {where} is empty: no document with text; add documents and retry")
    return docs


def load_questions(path: str | Path) -> list[QAItem]:
    """Load ``{"question", "answer"?, "sources"?, "id"?}`` lines; blank questions → CorpusError."""
    p = Path(path)
    if not p.exists():
        raise CorpusError(f"question file {str(p)!r} does not exist; give a JSONL file of {{\"question\": ...}} lines")
    items: list[QAItem] = []
    ignored: dict[str, int] = {}
    for n, row in _jsonl_rows(p):
        for key in row:
            if key in QA_KEYS:
                continue
            near = _near(key, QA_KEYS)
            if near is not None:
                raise CorpusError(f"{p}:{n}: unknown key {key!r}; did you mean {near!r}? A question line has the keys "
                                  f"{', '.join(QA_KEYS)} (only 'question' is required)")
            ignored.setdefault(key, n)
        q = row.get("question")
        if not isinstance(q, str) or not q.strip():
            raise CorpusError(f"{p}:{n}: each line needs a non-empty string field 'question'")
        answer = row.get("answer")
        if answer is not None and not isinstance(answer, str):
            raise CorpusError(f"{p}:{n}: 'answer' must be a string when given")
        sources = row.get("sources") or ()
        if isinstance(sources, str):
            sources = (sources,)
        if not isinstance(sources, list | tuple) or not all(isinstance(s, str) for s in sources):
            raise CorpusError(f"{p}:{n}: 'sources' must be a list of document ids when given")
        items.append(QAItem(q.strip(), answer, tuple(sources), str(row.get("id", f"q{n}"))))
    if not items:
        raise CorpusError(f"question file {str(p)!r} holds no questions")
    if ignored:
        first = ", ".join(f"{k!r} (line {n})" for k, n in ignored.items())
        warnings.warn(f"{p}: ignoring unknown key(s) {first}: a question line has the keys {', '.join(QA_KEYS)}",
                      stacklevel=2)
    return items
