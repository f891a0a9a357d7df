"""Shared fixtures. Real servers: PostgreSQL at 127.0.0.1:5432 (database ``test``) runs on every dev machine and in CI."""

from __future__ import annotations

import os
import uuid

import pytest

os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "2")

PG_URL = os.environ.get("AUTORAG_HP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_URL.replace("postgresql://", "postgresql://", 1), connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The PostgreSQL URL; fails loudly (not a skip) when the server is down, since CI must have it."""
    problem = _pg_available()
    if problem is not None:
        if os.environ.get("AUTORAG_HP_SKIP_PG") == "1":
            pytest.skip(f"PostgreSQL unavailable and AUTORAG_HP_SKIP_PG=1: {problem}")
        pytest.fail(f"PostgreSQL at {PG_URL} is not reachable ({problem}); start it or set AUTORAG_HP_SKIP_PG=1")
    return PG_URL


@pytest.fixture
def unique_name() -> str:
    """A study/table name no other test run uses (tests share one PostgreSQL database)."""
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def pipeline():
    """The bundled FAQ pipeline with the extractive generator (no model): what the service tests serve."""
    from autorag_hp.rag import load_pipeline

    return load_pipeline("python_docs_faq", generator="extractive")
