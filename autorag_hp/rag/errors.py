"""Errors of the RAG layer. Each says what was wrong and what to do next."""

from __future__ import annotations

from autorag_hp.errors import AutoRAGHPError, InvalidConfigError

__all__ = ["RAGError", "CorpusError", "QuestionError", "InvalidConfigError", "PipelineSpecError"]


class RAGError(AutoRAGHPError):
    """Base class of errors raised by :mod:`autorag_hp.rag`."""


class CorpusError(RAGError, ValueError):
    """A corpus or question file is missing, unreadable, malformed or empty."""


class QuestionError(RAGError, ValueError):
    """A question is empty, not a string, or longer than the pipeline accepts."""


class PipelineSpecError(RAGError, ValueError):
    """A pipeline YAML is malformed."""
