"""Retrievers (BM25, FAISS dense, hybrid reciprocal-rank fusion) and the index cache.

One index per (corpus fingerprint, chunk_size, chunk_overlap, embedding), built on first use, persisted under
``<cache>/index/<fingerprint>/`` (written atomically: temp file, then rename) and reused by later runs and
other processes. Dense vectors go through :class:`~autorag_hp.rag.embeddings.CachedEmbeddings`, so a chunk text
already embedded for another chunk size is not embedded again.

>>> from autorag_hp.rag.data import Document
>>> cache = IndexCache([Document("a", "Lists are mutable."), Document("b", "Tuples are immutable.")])
>>> r = cache.retriever(chunk_size=256, chunk_overlap=0, embedding="bm25")
>>> [cache.chunks(256, 0)[i].source for i, _ in r.search("are tuples immutable", 1)]
['b']
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autorag_hp.cache import cache_root
from autorag_hp.rag.chunking import Chunk, split_documents
from autorag_hp.rag.data import Document, corpus_fingerprint
from autorag_hp.rag.embeddings import (
    DENSE,
    EMBEDDINGS,
    CachedEmbeddings,
    default_store,
    get_embeddings,
)
from autorag_hp.rag.errors import InvalidConfigError
from autorag_hp.rag.language import CJK_CHAR, CJK_RANGES, segment

_STOP = frozenset(
    "a an and are as at be by can do does for from how i if in is it me my of on or so that the this to was what "
    "when where which who why will with you your".split()
)
_TOKEN = re.compile(rf"[a-z0-9_]+|[{CJK_RANGES}]+")


def tokenize(text: str) -> list[str]:
    """BM25 tokens: lower-cased English words without stop words; Chinese runs segmented into words."""
    out: list[str] = []
    for m in _TOKEN.finditer(text.lower()):
        tok = m.group()
        if CJK_CHAR.match(tok):
            out.extend(segment(tok))
        elif tok not in _STOP:
            out.append(tok)
    return out


def _top(scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    k = min(k, len(scores))
    if k <= 0:
        return []
    idx = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    order = sorted(idx.tolist(), key=lambda i: (-float(scores[i]), i))  # explicit tie-break: lower index first
    return [(i, float(scores[i])) for i in order]


class BM25Retriever:
    """Okapi BM25 (k1 = 1.5, b = 0.75, negative idf floored at 0.25 x the mean idf: rank_bm25's ``BM25Okapi``),
    scores precomputed per (chunk, term) in a sparse matrix, so a query costs the postings of its terms instead
    of a Python loop over every chunk (59,406 chunks of the whole Python docs: ~1 ms instead of ~100 ms).
    Scores equal ``BM25Okapi.get_scores`` exactly (same float64 operations in the same order)."""

    name = "bm25"
    k1, b, epsilon = 1.5, 0.75, 0.25

    def __init__(self, chunks: Sequence[Chunk]):
        from collections import Counter

        from scipy.sparse import csc_matrix

        self.n = len(chunks)
        docs = [Counter(tokenize(c.text) or ["\0"]) for c in chunks]
        self.vocab: dict[str, int] = {}
        rows, cols, tfs = [], [], []
        for d, counts in enumerate(docs):
            for tok, tf in counts.items():
                rows.append(d)
                cols.append(self.vocab.setdefault(tok, len(self.vocab)))
                tfs.append(tf)
        dl = np.array([sum(c.values()) for c in docs], dtype=np.float64)
        avgdl = dl.sum() / max(1, self.n)
        df = np.bincount(np.asarray(cols, dtype=np.int64), minlength=len(self.vocab)).astype(np.float64)
        idf = np.log(self.n - df + 0.5) - np.log(df + 0.5)
        idf[idf < 0] = self.epsilon * (idf.sum() / max(1, len(idf)))
        r, c, tf = np.asarray(rows), np.asarray(cols), np.asarray(tfs, dtype=np.float64)
        w = idf[c] * (tf * (self.k1 + 1) / (tf + self.k1 * (1 - self.b + self.b * dl[r] / avgdl)))
        m = csc_matrix((w, (r, c)), shape=(self.n, len(self.vocab)))
        m.sort_indices()
        self._indptr, self._indices, self._data = m.indptr, m.indices, m.data

    def scores(self, query: str | list[str]) -> np.ndarray:
        """BM25 score of every chunk for ``query`` (text, or its :func:`tokenize` tokens)."""
        scores = np.zeros(self.n)
        for tok in tokenize(query) if isinstance(query, str) else query:  # repeats count again, as in BM25Okapi
            t = self.vocab.get(tok)
            if t is not None:
                s, e = self._indptr[t], self._indptr[t + 1]
                scores[self._indices[s:e]] += self._data[s:e]
        return scores

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        toks = tokenize(query)
        return _top(self.scores(toks), k) if toks else []


class DenseRetriever:
    def __init__(self, vectors: np.ndarray, embeddings: CachedEmbeddings):
        import faiss

        self.name = embeddings.name
        self.embeddings = embeddings
        self.n = len(vectors)
        self._index = faiss.IndexFlatIP(vectors.shape[1])
        self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        q = self.embeddings.encode([query], "query")
        scores, ids = self._index.search(np.ascontiguousarray(q, dtype=np.float32), min(k, self.n))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]


class HybridRetriever:
    """Reciprocal-rank fusion, ``score = sum 1 / (rrf_k + rank)`` over BM25 and one dense retriever."""

    name = "hybrid"

    def __init__(self, sparse: BM25Retriever, dense: DenseRetriever, rrf_k: int = 60):
        self.sparse, self.dense, self.rrf_k = sparse, dense, rrf_k

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        depth = max(50, 4 * k)
        fused: dict[int, float] = {}
        for ranked in (self.sparse.search(query, depth), self.dense.search(query, depth)):
            for rank, (i, _) in enumerate(ranked, 1):
                fused[i] = fused.get(i, 0.0) + 1.0 / (self.rrf_k + rank)
        order = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
        return order[:k]


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _digest(chunks: Sequence[Chunk]) -> str:
    h = hashlib.sha1()
    for c in chunks:
        h.update(c.id.encode() + b"\0" + c.text.encode() + b"\1")
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class BuildEstimate:
    """How long embedding one dense index takes on this machine, projected from a timed sample of its own chunks
    (:meth:`IndexCache.estimate_build`). The sampled vectors are stored, so the sample is never embedded twice."""

    embedding: str
    chunk_size: int
    chunk_overlap: int
    chunks: int  # chunks in the index
    todo: int  # distinct chunk texts not in the embedding store yet (projected from the sample's misses)
    sampled: int  # texts embedded and timed for the estimate (store misses among the sample)
    rate: float  # texts per second measured on the sample; inf when the whole sample was already stored

    @property
    def seconds(self) -> float:
        """Projected time to embed what is left of the index after the sample."""
        return max(0, self.todo - self.sampled) / self.rate if math.isfinite(self.rate) else 0.0

    @property
    def full_seconds(self) -> float:
        """Projected time to embed every chunk of the index in an empty store."""
        return self.chunks / self.rate if math.isfinite(self.rate) else 0.0


class IndexCache:
    """Lazily built, persisted retrievers for one corpus. Thread-safe: each index is built once.

    ``on_estimate``: called with a :class:`BuildEstimate` before a dense index that is projected to take longer
    than ``notice_after_s`` seconds is embedded (the estimate embeds ``estimate_sample`` of its chunks first,
    which the build then reuses); ``None`` (the default) skips the estimate.
    """

    notice_after_s: float = 60.0
    estimate_sample: int = 32

    def __init__(
        self,
        docs: Sequence[Document],
        root: str | Path | None = None,
        *,
        hybrid_dense: str = "e5",
        progress: bool | None = None,
        on_estimate: Callable[[BuildEstimate], None] | None = None,
    ):
        self.docs = list(docs)
        self.fingerprint = corpus_fingerprint(self.docs)
        self.root = Path(root) if root else cache_root()
        self.dir = self.root / "index" / self.fingerprint
        self.hybrid_dense = hybrid_dense
        self.progress = progress
        self.on_estimate = on_estimate
        self._chunks: dict[tuple[int, int], list[Chunk]] = {}
        self._retrievers: dict[tuple[int, int, str], object] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()
        self.stats = {"built": 0, "loaded": 0}

    def _key_lock(self, key: tuple) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def chunks(self, chunk_size: int, chunk_overlap: int) -> list[Chunk]:
        key = (chunk_size, chunk_overlap)
        got = self._chunks.get(key)
        if got is not None:
            return got
        with self._key_lock(("chunks", *key)):
            if key not in self._chunks:
                self._chunks[key] = split_documents(self.docs, chunk_size, chunk_overlap)
            return self._chunks[key]

    def retriever(self, chunk_size: int, chunk_overlap: int, embedding: str):
        """The retriever for one (chunk_size, chunk_overlap, embedding); builds and persists it on first use."""
        if embedding not in EMBEDDINGS:
            raise InvalidConfigError(f"unknown embedding {embedding!r}; choose one of {list(EMBEDDINGS)}")
        key = (chunk_size, chunk_overlap, embedding)
        got = self._retrievers.get(key)
        if got is not None:
            return got
        with self._key_lock(key):
            if key not in self._retrievers:
                self._retrievers[key] = self._build(chunk_size, chunk_overlap, embedding)
            return self._retrievers[key]

    def _build(self, cs: int, co: int, embedding: str):
        chunks = self.chunks(cs, co)
        if embedding == "bm25":
            return BM25Retriever(chunks)
        if embedding == "hybrid":
            return HybridRetriever(self.retriever(cs, co, "bm25"), self.retriever(cs, co, self.hybrid_dense))
        return DenseRetriever(self.vectors(cs, co, embedding), self.embeddings(embedding))

    def embeddings(self, name: str) -> CachedEmbeddings:
        """The cached dense model ``name``, storing vectors under this cache's root."""
        return CachedEmbeddings(get_embeddings(name), default_store(self.root))

    def vectors(self, cs: int, co: int, embedding: str) -> np.ndarray:
        """The chunk vectors of one dense index: from disk when present and matching, else embedded and saved."""
        if embedding not in DENSE:
            raise InvalidConfigError(f"{embedding!r} is not a dense embedding; dense ones: {sorted(DENSE)}")
        chunks = self.chunks(cs, co)
        digest = _digest(chunks)
        base = self.dir / f"{embedding}-{cs}-{co}"
        meta_path, vec_path = base.with_suffix(".json"), base.with_suffix(".npy")
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("digest") == digest and meta.get("n") == len(chunks):
                vecs = np.load(vec_path)
                if vecs.shape[0] == len(chunks):
                    self.stats["loaded"] += 1
                    return vecs
        except (OSError, ValueError):
            pass
        if self.on_estimate is not None:
            est = self.estimate_build(cs, co, embedding, sample=self.estimate_sample)
            if est is not None and est.seconds > self.notice_after_s:
                self.on_estimate(est)
        emb = self.embeddings(embedding)
        show = self.progress if self.progress is not None else sys.stderr.isatty()
        from tqdm.auto import tqdm

        with tqdm(total=len(chunks), desc=f"index {embedding} chunk_size={cs}", unit="chunk",
                  disable=not show, leave=False) as bar:
            vecs = emb.encode([c.text for c in chunks], "passage", progress=bar)
        import io

        buf = io.BytesIO()
        np.save(buf, vecs)
        _atomic_write(vec_path, buf.getvalue())
        _atomic_write(meta_path, json.dumps({"digest": digest, "n": len(chunks), "model": embedding,
                                              "chunk_size": cs, "chunk_overlap": co}).encode())
        self.stats["built"] += 1
        return vecs

    def estimate_build(self, cs: int, co: int, embedding: str, *, sample: int = 32,
                       seed: int = 0) -> BuildEstimate | None:
        """Project the build time of one dense index (``hybrid``: its dense half) from ``sample`` of its own
        chunk texts, drawn at random and embedded through the store after one warm-up call (so model loading is
        not counted). None when the index has no more distinct texts than the sample: building it is the sample."""
        if embedding == "hybrid":
            embedding = self.hybrid_dense
        if embedding not in DENSE:
            raise InvalidConfigError(f"{embedding!r} is not a dense embedding; dense ones: {sorted(DENSE)}")
        chunks = self.chunks(cs, co)
        texts = list(dict.fromkeys(c.text for c in chunks))
        if len(texts) <= sample:
            return None
        rng = np.random.default_rng(seed)
        picked = [texts[i] for i in sorted(rng.choice(len(texts), sample, replace=False).tolist())]
        get_embeddings(embedding).encode(["warm up"], "passage")  # loads the model outside the timing
        emb = self.embeddings(embedding)
        misses = emb.misses
        t = time.perf_counter()
        emb.encode(picked, "passage")
        dt = time.perf_counter() - t
        missed = emb.misses - misses
        rate = missed / max(dt, 1e-9) if missed else math.inf
        todo = round(len(texts) * missed / sample)
        return BuildEstimate(embedding, cs, co, len(chunks), todo, missed, rate)
