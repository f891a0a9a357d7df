"""Storage backends: memory, and SQL (SQLite default, PostgreSQL by URL). See :mod:`.base` for the contract."""

from __future__ import annotations

from autorag_hp.storage.base import (
    EXPIRE,
    EXPIRED,
    PENDING,
    REPORT,
    REPORTED,
    SUGGEST,
    Event,
    Stat,
    Storage,
    TrialRecord,
)
from autorag_hp.storage.memory import MemoryStorage


def open_storage(storage: Storage | str | None, **kwargs) -> Storage:
    """``None`` or ``"memory"`` → :class:`MemoryStorage`; a URL (``sqlite:///x.db``, ``postgresql://…``) →
    :class:`~autorag_hp.storage.sql.SQLStorage`; a :class:`Storage` is returned as is."""
    if storage is None or storage == "memory":
        return MemoryStorage()
    if isinstance(storage, Storage):
        return storage
    if isinstance(storage, str):
        if "://" not in storage:
            from autorag_hp.errors import InvalidStorageError

            raise InvalidStorageError(
                f"storage {storage!r} is not a URL; use None for memory, 'sqlite:///path.db' or 'postgresql://user@host/db'"
            )
        from autorag_hp.storage.sql import SQLStorage

        return SQLStorage(storage, **kwargs)
    raise TypeError(f"storage must be None, a URL string or a Storage, got {type(storage).__name__}")


__all__ = [
    "Event", "Stat", "Storage", "TrialRecord", "MemoryStorage", "open_storage",
    "SUGGEST", "REPORT", "EXPIRE", "PENDING", "REPORTED", "EXPIRED",
]
