"""PostgreSQL specifics on a real server: the HNSW path, concurrent writers and indexers, read replicas,
real photos end to end, and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from lookalike.errors import LookalikeError, ModelMismatch
from lookalike.stores.base import Filters, ImageRecord

pytest.importorskip("psycopg")
pytestmark = pytest.mark.postgres
SRC = str(Path(__file__).resolve().parents[2] / "src")


def clustered(n: int, dim: int, seed: int = 0, clusters: int = 40) -> np.ndarray:
    """Unit vectors around a few centres (like embeddings of photo collections), not uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def recs_from(vecs: np.ndarray, prefix: str = "/c", start: int = 0) -> list[ImageRecord]:
    return [ImageRecord(path=f"{prefix}/{'rare' if i % 50 == 0 else 'common'}/{i:05d}.jpg", size=i, mtime=float(i),
                        sha=f"{prefix}{i}", width=100, height=100, embedding=v, tags=[(i % 7, 0.5)])
            for i, v in enumerate(vecs, start=start)]


# -- the HNSW path ----------------------------------------------------------------------------------------
def test_hnsw_index_serves_knn_with_high_recall_and_filters_still_return_k(pg_url: str) -> None:
    from lookalike.stores.postgres import PostgresStore

    store = PostgresStore(pg_url, exact_below=0)  # always the index, even for this small collection
    store.set_model_info("m", "1", 48)
    vecs = clustered(3000, 48)
    store.write(upserts=recs_from(vecs))
    ids = {p: st.id for p, st in store.file_states().items()}
    path_of = {v: k for k, v in ids.items()}
    with store.primary.connection() as c:
        c.execute("ANALYZE lookalike.vectors")
        plan = "\n".join(r[0] for r in c.execute(
            "EXPLAIN SELECT image_id FROM lookalike.vectors ORDER BY embedding <#> %b LIMIT 10",
            [__import__("lookalike.stores.postgres", fromlist=["Vec"]).Vec(vecs[0])]).fetchall())
    assert "vectors_hnsw" in plan
    queries = clustered(50, 48, seed=1)
    recall = []
    for q in queries:
        exact = set(np.argsort(-(vecs @ q))[:10].tolist())
        got = {int(path_of[h.id].rsplit("/", 1)[1][:5]) for h in store.knn(q, 10)}
        recall.append(len(exact & got) / 10)
    assert np.mean(recall) >= 0.9
    # a filter that keeps 2% of the images: iterative scans (or the exact fallback) still find k of them
    rare = Filters(folder="/c/rare")
    for q in queries[:10]:
        hits = store.knn(q, 20, rare)
        assert len(hits) == 20 and all(path_of[h.id].startswith("/c/rare/") for h in hits)
    store.close()


# -- concurrency ------------------------------------------------------------------------------------------
def test_concurrent_writers_neither_double_nor_lose_rows(pg_url: str) -> None:
    from lookalike.stores.postgres import PostgresStore

    setup = PostgresStore(pg_url)
    setup.set_model_info("m", "1", 32)
    vecs = clustered(600, 32, seed=3)
    all_recs = recs_from(vecs, "/shared")
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        try:
            store = PostgresStore(pg_url)
            order = np.random.default_rng(seed).permutation(len(all_recs))[:450]  # overlapping 3/4 of the paths
            for chunk in np.array_split(order, 15):
                store.write(upserts=[all_recs[i] for i in chunk])
            store.close()
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with setup.primary.connection() as c:
        n, distinct = c.execute("SELECT COUNT(*), COUNT(DISTINCT path) FROM lookalike.images").fetchone()
        orphans = c.execute("SELECT COUNT(*) FROM lookalike.images i LEFT JOIN lookalike.vectors v "
                            "ON v.image_id = i.id WHERE v.image_id IS NULL").fetchone()[0]
        tags = c.execute("SELECT COUNT(*) FROM lookalike.tags").fetchone()[0]
    written = set().union(*[set(np.random.default_rng(s).permutation(600)[:450].tolist()) for s in range(4)])
    assert n == distinct == len(written) and orphans == 0 and tags == n
    setup.close()


def test_a_deadlock_between_writers_is_retried_not_reported_as_a_lost_connection(pg_url: str) -> None:
    """Two write transactions taking two rows in opposite orders: PostgreSQL kills one with "deadlock
    detected"; the store retries it (the pool once turned it into "lost the connection", which ended an
    indexer in CI) and both writes land. A write that keeps colliding ends in one LookalikeError line."""
    from lookalike.stores.postgres import PostgresStore

    store = PostgresStore(pg_url)
    with store.primary.connection() as c:
        c.execute("DROP TABLE IF EXISTS lookalike.deadlock_probe")
        c.execute("CREATE TABLE lookalike.deadlock_probe (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)")
        c.execute("INSERT INTO lookalike.deadlock_probe (id) VALUES (1), (2)")
    both_hold_one = threading.Barrier(2, timeout=30)
    attempts = {1: 0, 2: 0}
    errors: list[BaseException] = []

    def writer(first: int) -> None:
        second = 3 - first

        def tx(c) -> None:  # type: ignore[no-untyped-def]
            attempts[first] += 1
            c.execute("UPDATE lookalike.deadlock_probe SET n = n + 1 WHERE id = %s", (first,))
            if attempts[first] == 1:
                both_hold_one.wait()  # each holds its first row: the second lock closes the cycle
            c.execute("UPDATE lookalike.deadlock_probe SET n = n + 1 WHERE id = %s", (second,))

        try:
            store._retrying(tx)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(i,)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(attempts.values()) == [1, 2]  # one of them was the deadlock's victim and ran again
    with store.primary.connection() as c:
        assert c.execute("SELECT n FROM lookalike.deadlock_probe ORDER BY id").fetchall() == [(2,), (2,)]
    from psycopg import errors as pgerr

    def always_collides(c) -> None:  # type: ignore[no-untyped-def]
        raise pgerr.DeadlockDetected("deadlock detected")

    with pytest.raises(LookalikeError, match="kept colliding") as err:
        store._retrying(always_collides, attempts=2)
    assert "\n" not in str(err.value) and err.value.exit_code == 1  # a runtime failure, not a usage error
    with store.primary.connection() as c:
        c.execute("DROP TABLE lookalike.deadlock_probe")
    store.close()


def test_two_indexer_processes_on_overlapping_folders(pg_url: str, photos: Path, tmp_path: Path) -> None:
    """Two `lookalike index` processes over the same photos at once: every photo exactly once."""
    env = {**os.environ, "PYTHONPATH": SRC, "LOOKALIKE_DB": pg_url, "OMP_NUM_THREADS": "1"}
    names = sorted(p.name for p in photos.iterdir())
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, chosen in ((a, names[:10]), (b, names[6:])):
        folder.mkdir()
        for n in chosen:
            (folder / n).write_bytes((photos / n).read_bytes())
    cmd = [sys.executable, "-m", "lookalike.cli", "index", "--json", "--quiet"]
    procs = [subprocess.Popen([*cmd, str(a), str(b)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
             subprocess.Popen([*cmd, str(b), str(a)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    from lookalike.stores.postgres import PostgresStore

    store = PostgresStore(pg_url)
    states = store.file_states()
    expected = {str(a / n) for n in names[:10]} | {str(b / n) for n in names[6:]}
    assert set(states) == expected and store.count() == len(expected)
    assert store.stats()["vectors"] == len(expected)
    store.close()


# -- read replicas ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def replica(pg_server):  # type: ignore[no-untyped-def]
    """A streaming replica of the session's server, made through `lookalike db start --replica-of`."""
    from lookalike.cli import main
    from lookalike.stores.pgserver import LocalServer, scratch_dir

    folder = scratch_dir("lookalike-replica-") / "replica"
    assert main(["db", "start", str(folder), "--replica-of", str(pg_server.folder)]) == 0
    server = LocalServer(folder)
    yield server
    server.stop()
    import shutil

    shutil.rmtree(folder.parent, ignore_errors=True)


def test_searches_on_the_replica_see_what_was_indexed_on_the_primary(pg_url: str, replica, photos: Path, model,  # type: ignore[no-untyped-def]
                                                                     capsys) -> None:
    import psycopg

    from lookalike.config import Settings
    from lookalike.library import Library
    from lookalike.stores.pgserver import wait_for_replay

    settings = Settings(db=pg_url, read_db=(replica.url(),))
    with Library(settings=settings) as lib:
        lib.index([photos])
        wait_for_replay(pg_url, replica.url())
        res = lib.search(image=photos / "chelsea.jpg", limit=3)
        assert Path(res.results[0].path).name == "chelsea.jpg"
        words = lib.search("cat", limit=3)
        assert {"chelsea.jpg", "black_cat.jpg"} & {Path(r.path).name for r in words.results}
        info = lib.info()
        assert info["replicas"][0]["ok"] and info["replicas"][0]["in_recovery"]
        # proof that searches are served by the replica: with its replay paused, a new image is in the
        # primary (counts) but not yet in search results; once replay resumes, it is
        with psycopg.connect(replica.url(), autocommit=True) as r:
            r.execute("SELECT pg_wal_replay_pause()")
            try:
                extra = photos.parent / "extra_photo"
                extra.mkdir(exist_ok=True)
                (extra / "copy_of_coffee.jpg").write_bytes((photos / "coffee.jpg").read_bytes())
                lib.index([extra])
                names = [Path(h.path).name for h in lib.search(image=photos / "coffee.jpg", limit=5).results]
                assert "copy_of_coffee.jpg" not in names and lib.store.count() == len(list(photos.iterdir())) + 1
            finally:
                r.execute("SELECT pg_wal_replay_resume()")
        wait_for_replay(pg_url, replica.url())
        names = [Path(h.path).name for h in lib.search(image=photos / "coffee.jpg", limit=5).results]
        assert "copy_of_coffee.jpg" in names
    # with the primary unreachable, searches go on from the replica
    from lookalike.stores.pgserver import free_port

    dead = pg_url.rsplit("@", 1)[0] + f"@127.0.0.1:{free_port(22000)}/lookalike"
    with Library(settings=Settings(db=dead, read_db=(replica.url(),))) as lib:
        res = lib.search(image=photos / "chelsea.jpg", limit=3)
        assert Path(res.results[0].path).name == "chelsea.jpg"
        assert {"chelsea.jpg", "black_cat.jpg"} & {Path(r.path).name for r in lib.search("cat", limit=3).results}
    # the same through the command line's --db / --read-db
    import json

    from lookalike.cli import main

    assert main(["search", str(photos / "rocket.jpg"), "--db", dead, "--read-db", replica.url(), "--json", "-n", "1"]) == 0
    assert Path(json.loads(capsys.readouterr().out)["results"][0]["path"]).name == "rocket.jpg"
    # info in words, with a replica that answers and one that does not (it failed on PostgreSQL's index name)
    gone = pg_url.rsplit("@", 1)[0] + f"@127.0.0.1:{free_port(23000)}/lookalike"
    assert main(["info", "--db", pg_url, "--read-db", replica.url(), "--read-db", gone]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("vectors:") and "index (pgvector)" in line for line in lines)
    replicas = [line for line in lines if line.startswith("replica:")]
    assert len(replicas) == 2 and replicas[0].endswith("ok") and "unreachable" in replicas[1]


def test_an_unreachable_replica_is_skipped(pg_url: str) -> None:
    from lookalike.stores.pgserver import free_port
    from lookalike.stores.postgres import PostgresStore

    dead = pg_url.rsplit("@", 1)[0] + f"@127.0.0.1:{free_port(20000)}/lookalike"
    store = PostgresStore(pg_url, read_urls=[dead])
    store.set_model_info("m", "1", 8)
    store.write(upserts=recs_from(clustered(20, 8)))
    assert len(store.knn(clustered(1, 8, seed=9)[0], 5)) == 5  # answered by the primary
    state = store.stats()["replicas"][0]
    assert state["ok"] is False and "cannot connect" in state["error"] and "***" in state["url"]
    store.close()


# -- real photos end to end -------------------------------------------------------------------------------
def test_library_on_postgres_indexes_and_searches_real_photos(pg_url: str, photos: Path, model) -> None:  # type: ignore[no-untyped-def]
    from lookalike.config import Settings
    from lookalike.library import Library

    with Library(settings=Settings(db=pg_url)) as lib:
        first = lib.index([photos])
        assert first.indexed == len(list(photos.iterdir())) and not first.skipped
        again = lib.index([photos])
        assert again.indexed == 0 and again.unchanged == first.indexed
        for name in ("chelsea", "rocket", "guitar"):
            res = lib.search(image=photos / f"{name}.jpg", limit=3)
            assert Path(res.results[0].path).stem == name and res.results[0].score > 0.99
        cats = lib.search("cat", limit=3)
        assert cats.by == "keywords"
        assert {"chelsea", "black_cat"} <= {Path(r.path).stem for r in cats.results}
        res = lib.search(image=photos / "chelsea.jpg", limit=5, filters=Filters(min_size=400))
        assert all(min(r.width, r.height) >= 400 for r in res.results)
        info = lib.info()
        assert info["store"] == "postgresql" and info["images"] == first.indexed and info["library"] is None


# -- errors -----------------------------------------------------------------------------------------------
def test_errors_are_one_line(pg_url: str) -> None:
    from lookalike.stores.pgserver import free_port
    from lookalike.stores.postgres import MIGRATIONS, PostgresStore

    dead = pg_url.rsplit("@", 1)[0] + f"@127.0.0.1:{free_port(21000)}/lookalike"
    with pytest.raises(LookalikeError, match="cannot connect to PostgreSQL") as err:
        PostgresStore(dead)
    assert "\n" not in str(err.value) and "***" in str(err.value)  # and the password is not shown
    assert err.value.exit_code == 1 and err.value.status == 503  # the environment failed, not the command
    with pytest.raises(LookalikeError, match="postgresql:// URL"):
        PostgresStore("mysql://x")
    with pytest.raises(LookalikeError, match="--read-db must be a postgresql:// URL"):
        PostgresStore(pg_url, read_urls=["nonsense"])
    # a URL libpq cannot use at all is a usage error (exit 2), its password never shown, even where libpq quotes it
    secret = "S3cr3tPw"
    for bad in (f"postgresql://postgres:{secret}@127.0.0.1:notaport/lookalike",
                f"postgresql://postgres:{secret}@127.0.0.1:99999/lookalike",
                f"postgresql://127.0.0.1:5999/lookalike?sslmode=bogus&password={secret}",
                f"postgresql://postgres:{secret}@[::1/lookalike"):
        with pytest.raises(LookalikeError) as err:
            PostgresStore(bad)
        assert secret not in str(err.value) and "\n" not in str(err.value), str(err.value)
        assert err.value.exit_code == 2 or "[::1" in bad, str(err.value)
    store = PostgresStore(pg_url)
    store.set_model_info("m", "1", 8)
    with pytest.raises(LookalikeError, match="dimensions"):
        store.write(upserts=recs_from(clustered(1, 16)))
    assert store.count() == 0
    store.write(upserts=recs_from(clustered(3, 8)))
    with pytest.raises(ModelMismatch, match="16 dimensions"):
        store.knn(np.ones(16, np.float32) / 4, 5)
    with store.primary.connection() as c:
        c.execute("INSERT INTO lookalike.migrations (version) VALUES (%s)", (len(MIGRATIONS) + 3,))
    store.close()
    with pytest.raises(LookalikeError, match="newer than this lookalike"):
        PostgresStore(pg_url)


def test_pooled_connections_survive_a_server_restart(pg_server, pg_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from lookalike.stores import pgconn
    from lookalike.stores.postgres import PostgresStore

    monkeypatch.setattr(pgconn, "PING_AFTER_S", 0.0)  # check every pooled connection before use
    store = PostgresStore(pg_url)
    store.set_model_info("m", "1", 8)
    store.write(upserts=recs_from(clustered(5, 8)))
    assert store.count() == 5
    pg_server.stop()
    pg_server.start(fast=True)
    assert store.count() == 5 and len(store.knn(clustered(1, 8)[0], 3)) == 3
    store.close()


def test_migration_2_upgrades_a_version_1_database(pg_url: str) -> None:
    import psycopg

    from lookalike.stores.postgres import MIGRATIONS, SCHEMA, PostgresStore
    from lookalike.stores.sql import split_sql as _split_sql

    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {SCHEMA}")
        c.execute(f"CREATE TABLE {SCHEMA}.migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        for stmt in _split_sql(MIGRATIONS[0]):
            c.execute(stmt)
        c.execute(f"INSERT INTO {SCHEMA}.migrations (version) VALUES (1)")
        c.execute(f"INSERT INTO {SCHEMA}.images (path, folder, size, mtime, sha, width, height, indexed_at) "
                  "VALUES ('/old.jpg', '/', 1, 1, 's', 10, 10, 0)")
    store = PostgresStore(pg_url)
    assert store.schema_version == len(MIGRATIONS) >= 2
    assert [p for _, p in store.missing_extras("faces")] == ["/old.jpg"]
    store.close()
