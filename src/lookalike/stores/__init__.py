"""Stores: the embedded SQLite + faiss store (default) and PostgreSQL + pgvector, behind one protocol."""

from __future__ import annotations

from lookalike.config import Settings
from lookalike.stores.base import Store


def open_store(settings: Settings, *, read_only: bool = False) -> Store:
    if settings.db:
        from lookalike.stores.postgres import PostgresStore

        return PostgresStore(settings.db, read_urls=settings.read_db)
    from lookalike.stores.sqlite import SQLiteStore

    return SQLiteStore(settings.library, vector_index=settings.vector_index, nprobe=settings.nprobe)
