"""Errors of the RAG layer. Each says what was wrong and what to do next."""

from __future__ import annotations

from autorag_hp.errors import AutoRAGHPError, InvalidConfigError

__all__ = ["RAGError", "CorpusError", "QuestionError", "InvalidConfigError", "PipelineSpecError", "check_question"]


class RAGError(AutoRAGHPError):
    """Base class of errors raised by :mod:`autorag_hp.rag`."""


class CorpusError(RAGError, ValueError):
    """A corpus or question file is missing, unreadable, malformed or empty."""


class QuestionError(RAGError, ValueError):
    """A question is empty, not a string, or longer than the pipeline accepts.

    ``code`` names which (``not_a_string``, ``empty_question``, ``question_too_long``), for callers such as the
    HTTP service that answer with a machine-readable code."""

    def __init__(self, message: str, code: str = "bad_question"):
        super().__init__(message)
        self.code = code


def check_question(question: object, max_chars: int) -> str:
    """The one rule for an acceptable question: a non-empty string of at most ``max_chars`` characters.

    Returns it stripped; raises :class:`QuestionError` (with its ``code``) otherwise. The pipeline and the
    service both call this."""
    if not isinstance(question, str):
        raise QuestionError(f"a question must be a string, got {type(question).__name__}", "not_a_string")
    if len(question) > max_chars:
        raise QuestionError(
            f"the question has {len(question)} characters, more than the limit of {max_chars}; "
            "shorten it or raise max_question_chars", "question_too_long")
    if not question.strip():
        raise QuestionError("the question is empty; ask something", "empty_question")
    return question.strip()


class PipelineSpecError(RAGError, ValueError):
    """A pipeline YAML is malformed."""
