"""A LangChain retriever over :class:`autorag_hp.rag.RAGPipeline`'s index cache, whose fields are knobs."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever

__all__ = ["RAGRetriever"]


class RAGRetriever(BaseRetriever):
    """A LangChain retriever over :class:`autorag_hp.rag.RAGPipeline`'s index cache.

    Its fields are knobs: ``RAGRetriever(pipeline=pipe).configurable_fields(top_k=ConfigurableField(id="top_k"))``.
    """

    pipeline: Any
    top_k: int = 3
    chunk_size: int = 512
    embedding: str = "bm25"

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        cfg = {"top_k": self.top_k, "chunk_size": self.chunk_size, "embedding": self.embedding}
        return [LCDocument(page_content=c.text, metadata={"source": c.source, "score": c.score})
                for c in self.pipeline.retrieve(query, cfg)]
