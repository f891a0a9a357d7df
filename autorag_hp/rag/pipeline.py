"""The RAG pipeline runner: question -> retrieve -> render_prompt -> generate -> Answer.

Each stage can be used alone (the grid runner shares retrieval across configurations; the service has a
retrieval-only fast mode with the ``extractive`` generator):

>>> pipe = load_pipeline("python_docs_faq", generator="extractive")   # doctest: +SKIP
>>> cfg = {"embedding": "bm25", "top_k": 3}                 # missing keys fall back to the YAML defaults
>>> ctxs = pipe.retrieve("How do I copy a file?", cfg)      # doctest: +SKIP
>>> msgs = pipe.render_prompt("How do I copy a file?", ctxs, cfg)   # doctest: +SKIP
>>> pipe.run("How do I copy a file?", cfg).text             # doctest: +SKIP
"""

from __future__ import annotations

import numbers
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from autorag_hp.rag.data import (
    Document,
    load_bundled_corpus,
    load_bundled_questions,
    load_corpus,
    load_questions,
)
from autorag_hp.rag.data_refs import check_gold_sources, corpus_label, resolve_data_path
from autorag_hp.rag.errors import InvalidConfigError, PipelineSpecError, check_question
from autorag_hp.types import Answer, Context, QAItem

CONFIG_KEYS = ("chunk_size", "chunk_overlap", "embedding", "top_k", "prompt", "temperature", "max_new_tokens")
#: The config keys :meth:`RAGPipeline.retrieve` reads: configurations equal on these retrieve the same chunks.
RETRIEVAL_KEYS = ("chunk_size", "chunk_overlap", "embedding", "top_k")
DEFAULTS: dict[str, Any] = {
    "chunk_size": 512,
    "chunk_overlap": 64,
    "embedding": "bm25",
    "top_k": 3,
    "prompt": "concise",
    "temperature": 0.0,
    "max_new_tokens": 64,
}


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lo <= value <= hi:
        raise InvalidConfigError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return int(value)


def _data(spec: Any, kind: str, base: Path | None):
    """Load a corpus (``kind='corpus'``) or questions from ``{bundled: name}``, ``{path: p}`` or a path string."""
    if spec is None:
        return None
    if isinstance(spec, Document | QAItem) or (isinstance(spec, list | tuple) and spec and
                                              isinstance(spec[0], Document | QAItem)):
        return list(spec)
    if isinstance(spec, Mapping):
        if "bundled" in spec:
            name = str(spec["bundled"])
            return load_bundled_corpus(name) if kind == "corpus" else load_bundled_questions(name)
        if "path" not in spec:
            raise PipelineSpecError(f"{kind}: give {{bundled: NAME}} or {{path: PATH}}, got {dict(spec)}")
        spec = spec["path"]
    if isinstance(spec, str | Path):
        p = resolve_data_path(spec, base, "corpus" if kind == "corpus" else "question file")
        return load_corpus(p) if kind == "corpus" else load_questions(p)
    raise PipelineSpecError(f"{kind}: cannot load from {type(spec).__name__}")


class RAGPipeline:
    """A configurable RAG pipeline over one corpus.

    ``corpus``: list of :class:`Document`, a folder / JSONL path, or ``{"bundled": "python_docs"}``.
    ``questions``: list of :class:`QAItem`, a JSONL path, or ``{"bundled": ...}`` (optional).
    ``generator``: ``"local"`` (SmolLM2-135M-Instruct, default), ``"extractive"`` (no LLM), a LangChain chat
    model, or any object with the Generator protocol's ``generate``.
    ``space``: the default search space (grouped or flat spec); every parameter must be a config key.
    """

    retrieval_keys = RETRIEVAL_KEYS  # the grid runner retrieves once per group of configurations equal on these

    def __init__(
        self,
        corpus: Any,
        *,
        questions: Any = None,
        defaults: Mapping[str, Any] | None = None,
        generator: Any = "local",
        space: Mapping[str, Any] | None = None,
        name: str = "pipeline",
        cache_dir: str | Path | None = None,
        hybrid_dense: str = "e5",
        max_question_chars: int = 2000,
        seed: int = 0,
        progress: bool | None = None,
        base_dir: str | Path | None = None,
    ):
        from autorag_hp.rag.index import IndexCache

        base = Path(base_dir) if base_dir else None
        self.name = name
        self.docs: list[Document] = _data(corpus, "corpus", base)
        if self.docs is None:
            raise PipelineSpecError("a pipeline needs a corpus")
        self._questions: list[QAItem] | None = _data(questions, "questions", base)
        check_gold_sources(self._questions or (), self.docs, f"the questions of {name!r}")
        unknown = sorted(set(defaults or {}) - set(CONFIG_KEYS))
        if unknown:
            raise PipelineSpecError(f"unknown default(s) {unknown}; config keys are {list(CONFIG_KEYS)}")
        self.defaults = {**DEFAULTS, **(defaults or {})}
        self.max_question_chars = int(max_question_chars)
        self.seed = seed
        self.index = IndexCache(self.docs, cache_dir, hybrid_dense=hybrid_dense, progress=progress)
        self._generator_spec = generator
        self._generator = None
        self._gen_lock = threading.Lock()
        self._space_spec = dict(space) if space else None
        self._space = None
        self.resolve_config({})  # defaults must be valid
        if self._space_spec:
            for p in self.space.params:
                for v in p.values:
                    self.resolve_config({p.name: v})

    # ------------------------------------------------------------------------------------------- parts
    @property
    def space(self):
        """The default :class:`~autorag_hp.space.SearchSpace` (from the YAML ``space:``)."""
        if self._space is None:
            from autorag_hp.space import SearchSpace

            if not self._space_spec:
                raise PipelineSpecError(f"pipeline {self.name!r} declares no search space; add a 'space:' section")
            self._space = SearchSpace(self._space_spec)
            bad = [n for n in self._space.names if n not in CONFIG_KEYS]
            if bad:
                raise PipelineSpecError(f"space parameter(s) {bad} are not pipeline config keys {list(CONFIG_KEYS)}")
        return self._space

    @property
    def generator_spec(self):
        """The generator as the spec or caller declared it (``"extractive"``, ``{"type": "local", ...}``, an
        object), without building it."""
        return self._generator_spec

    @property
    def generator(self):
        with self._gen_lock:
            if self._generator is None:
                from autorag_hp.rag.generation import make_generator
                from autorag_hp.rag.language import corpus_language

                lang, _ = corpus_language(d.text for d in self.docs)  # picks the default model
                self._generator = make_generator(self._generator_spec, language=lang)
            return self._generator

    @property
    def fingerprint(self) -> str:
        return self.index.fingerprint

    def questions(self, limit: int | None = None) -> list[QAItem]:
        """The pipeline's questions (empty list when none are declared)."""
        qs = list(self._questions or [])
        return qs[:limit] if limit is not None else qs

    # -------------------------------------------------------------------------------------------- config
    def resolve_config(self, config: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults overlaid with ``config``, validated; unknown keys or values raise InvalidConfigError."""
        from autorag_hp.rag.chunking import check_chunking
        from autorag_hp.rag.embeddings import EMBEDDINGS
        from autorag_hp.rag.prompts import PROMPTS

        config = dict(config or {})
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise InvalidConfigError(f"unknown config key(s) {unknown}; the pipeline understands {list(CONFIG_KEYS)}")
        cfg = {**self.defaults, **config}
        if "chunk_overlap" not in config and isinstance(cfg["chunk_size"], int):
            # the default overlap never exceeds a quarter of the chunk, so small chunk sizes stay valid
            cfg["chunk_overlap"] = min(int(self.defaults["chunk_overlap"]), cfg["chunk_size"] // 4)
        check_chunking(cfg["chunk_size"], cfg["chunk_overlap"])
        if cfg["embedding"] not in EMBEDDINGS:
            raise InvalidConfigError(f"unknown embedding {cfg['embedding']!r}; choose one of {list(EMBEDDINGS)}")
        if cfg["prompt"] not in PROMPTS:
            raise InvalidConfigError(f"unknown prompt {cfg['prompt']!r}; choose one of {sorted(PROMPTS)}")
        _int("top_k", cfg["top_k"], 1, 100)
        _int("max_new_tokens", cfg["max_new_tokens"], 1, 4096)
        t = cfg["temperature"]
        if isinstance(t, bool) or not isinstance(t, numbers.Real) or not 0.0 <= float(t) <= 2.0:
            raise InvalidConfigError(f"temperature must be a number in [0, 2], got {t!r}")
        return cfg

    def check_question(self, question: str | QAItem) -> str:
        """The question text, stripped, or a :class:`QuestionError` (see :func:`autorag_hp.rag.errors.check_question`)."""
        return check_question(question.question if isinstance(question, QAItem) else question, self.max_question_chars)

    # -------------------------------------------------------------------------------------------- stages
    def retrieve(self, question: str | QAItem, config: Mapping[str, Any] | None = None) -> list[Context]:
        """The top-k chunks for the question (no LLM call; uses the index cache)."""
        q = self.check_question(question)
        cfg = self.resolve_config(config)
        cs, co = cfg["chunk_size"], cfg["chunk_overlap"]
        retriever = self.index.retriever(cs, co, cfg["embedding"])
        chunks = self.index.chunks(cs, co)
        return [Context(chunks[i].source, chunks[i].text, score) for i, score in retriever.search(q, cfg["top_k"])]

    def render_prompt(self, question: str | QAItem, contexts: Sequence[Context],
                      config: Mapping[str, Any] | None = None) -> list[dict]:
        """Chat messages for the configured prompt template."""
        from autorag_hp.rag.prompts import render

        return render(self.resolve_config(config)["prompt"], self.check_question(question), contexts)

    def _sampling(self, config: Mapping[str, Any] | None) -> dict[str, Any]:
        cfg = self.resolve_config(config)
        return {"temperature": float(cfg["temperature"]), "max_new_tokens": int(cfg["max_new_tokens"]), "seed": self.seed}

    def generate(self, messages: Sequence[dict] | str, config: Mapping[str, Any] | None = None):
        """One generator call with the configured temperature and max_new_tokens -> Generation."""
        return self.generator.generate(messages, **self._sampling(config))

    def generate_batch(self, batch: Sequence[Sequence[dict] | str], config: Mapping[str, Any] | None = None):
        """Several prompts with the same settings -> Generations: one padded batch when the generator has
        ``generate_batch`` (the local model), else one call each."""
        kw = self._sampling(config)
        gen = self.generator
        if callable(getattr(gen, "generate_batch", None)):
            return gen.generate_batch(list(batch), **kw)
        return [gen.generate(m, **kw) for m in batch]

    def run(self, question: str | QAItem, config: Mapping[str, Any] | None = None) -> Answer:
        """retrieve -> render_prompt -> generate, timed."""
        t0 = time.perf_counter()
        cfg = self.resolve_config(config)
        contexts = self.retrieve(question, cfg)
        t1 = time.perf_counter()
        messages = self.render_prompt(question, contexts, cfg)
        gen = self.generate(messages, cfg)
        t2 = time.perf_counter()
        return Answer(
            text=gen.text.strip(),
            contexts=tuple(contexts),
            prompt_tokens=gen.prompt_tokens,
            completion_tokens=gen.completion_tokens,
            latency_s=t2 - t0,
            llm_calls=int(getattr(self.generator, "llm_calls", 1)),
            meta={"config": cfg, "retrieval_s": t1 - t0, "generation_s": t2 - t1,
                  "generator": getattr(self.generator, "name", type(self.generator).__name__)},
        )

    __call__ = run

    def build_indexes(self, space=None, fixed: Mapping[str, Any] | None = None) -> list[tuple[int, int, str]]:
        """Build (or load) every index the space can ask for, with ``fixed`` values pinned on top of each
        configuration; returns the (chunk_size, overlap, embedding) keys in first-use order."""
        space = space or self.space
        names = set(space.names)
        keys = []
        for cfg in space.configs():
            full = self.resolve_config({**(fixed or {}), **{k: v for k, v in cfg.items() if k in names}})
            key = (full["chunk_size"], full["chunk_overlap"], full["embedding"])
            if key not in keys:
                keys.append(key)
        for key in keys:
            self.index.retriever(*key)
        return keys

    def __repr__(self) -> str:
        return f"RAGPipeline({self.name!r}, {len(self.docs)} documents, generator={self._generator_spec!r})"


def load_pipeline(path: str | Path, *, corpus: Any = None, questions: Any = None, generator: Any = None,
                  **overrides: Any) -> RAGPipeline:
    """A pipeline from its YAML spec: a bundled name (``python_docs_faq``; see :mod:`autorag_hp.specs`) or a file
    path; ``corpus`` / ``questions`` / ``generator`` override the spec's."""
    import yaml

    from autorag_hp.specs import resolve

    p = resolve(path, "pipeline", error=PipelineSpecError)
    try:
        spec = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise PipelineSpecError(f"{p}: not valid YAML: {e}") from e
    from autorag_hp.specs.schema import (  # pydantic models of the YAML
        validate_generator_spec,
        validate_pipeline_spec,
    )

    spec = validate_pipeline_spec(spec, str(p))
    validate_generator_spec(generator, "the generator override (--generator)")
    retrieval = spec.get("retrieval") or {}
    limits = spec.get("limits") or {}
    kwargs: dict[str, Any] = {
        # questions of the spec belong to the spec's corpus: a replaced corpus drops them unless given anew
        "questions": questions if questions is not None or corpus is not None else spec.get("questions"),
        "defaults": spec.get("defaults"),
        "generator": generator if generator is not None else spec.get("generator", "local"),
        "space": spec.get("space"),
        "name": spec.get("name", p.stem) if corpus is None else f"{corpus_label(corpus)} ({spec.get('name', p.stem)} "
                                                                 "settings)",
        "hybrid_dense": retrieval.get("hybrid_dense", "e5"),
        "max_question_chars": limits.get("max_question_chars", 2000),
        "base_dir": p.parent,
    }
    kwargs.update(overrides)
    return RAGPipeline(corpus if corpus is not None else spec.get("corpus"), **kwargs)
