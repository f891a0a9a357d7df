"""autorag_hp.rag: chunking, embeddings, retrievers, the index cache, prompts and the pipeline runner.

Imports are lazy: ``import autorag_hp.rag`` pulls in no torch, faiss or langchain.

>>> from autorag_hp.rag import load_pipeline
>>> pipe = load_pipeline("python_docs_faq", generator="extractive")  # doctest: +SKIP
>>> pipe.run(pipe.questions()[0], {"embedding": "bm25", "top_k": 3}).sources     # doctest: +SKIP
"""

from __future__ import annotations

from autorag_hp.deps import lazy_exports

_LAZY = {
    "RAGPipeline": ".pipeline",
    "load_pipeline": ".pipeline",
    "pipeline_from_spec": ".load",
    "CONFIG_KEYS": ".pipeline",
    "Document": ".data",
    "load_corpus": ".data",
    "load_questions": ".data",
    "load_bundled_corpus": ".data",
    "load_bundled_questions": ".data",
    "corpus_fingerprint": ".data",
    "split_documents": ".chunking",
    "Chunk": ".chunking",
    "IndexCache": ".index",
    "tokenize": ".index",
    "get_embeddings": ".embeddings",
    "CachedEmbeddings": ".embeddings",
    "E5Embeddings": ".embeddings",
    "EmbeddingStore": ".embeddings",
    "PROMPTS": ".prompts",
    "ExtractiveGenerator": ".generation",
    "ChatModelGenerator": ".generation",
    "RAGError": ".errors",
    "CorpusError": ".errors",
    "QuestionError": ".errors",
    "PipelineSpecError": ".errors",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
