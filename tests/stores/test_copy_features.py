"""Copy features (stores/copy_features.py) in both stores, as part of the two-store contract suite: written
with the record or by the extras back-fill, replaced by a re-index, gone with the image, copied by migrate."""

from __future__ import annotations

import numpy as np

from lookalike.stores.base import Move
from lookalike.stores.migrate import migrate
from store_records import DIM, record


def blob(i: int) -> bytes:
    return bytes(np.random.default_rng(100 + i).integers(0, 256, 18_000, dtype=np.uint8))  # ~ what verify packs


def ids_of(store) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {p: st.id for p, st in store.file_states().items()}


def test_written_replaced_and_gone_with_the_image(make_store) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    store.set_model_info("test-model", "1", DIM)
    store.write(upserts=[record(0, copy_features=blob(0), extras=("copies",)), record(1), record(2)])
    ids = ids_of(store)
    a, b, c = (ids[f"/photos/a/img{i:04d}.jpg"] for i in range(3))
    assert store.copy_features([a, b, c]) == {a: blob(0)}
    assert store.copy_features([]) == {}
    assert [i for i, _ in store.missing_extras("copies")] == [b, c]
    store.write_extras(b, ("copies",), copy_features=blob(1))  # the back-fill
    assert store.copy_features([a, b]) == {a: blob(0), b: blob(1)} and [i for i, _ in store.missing_extras("copies")] == [c]
    # a re-index of the file: the new record's features replace the old; without any, none are left
    store.write(upserts=[record(0, sha="f" * 64, copy_features=blob(5), extras=("copies",)),
                         record(1, sha="e" * 64)])
    assert store.copy_features([a, b]) == {a: blob(5)}
    store.write(moves=[Move(a, "/photos/b/moved.jpg", 1000, 1_600_000_000.0)])
    assert store.copy_features([a]) == {a: blob(5)}  # a move keeps the image and its features
    store.write(deletes=[a])
    assert store.copy_features([a]) == {}


def test_migrate_copies_them(make_store, tmp_path, request) -> None:  # type: ignore[no-untyped-def]
    """Both ways: the embedded store into PostgreSQL, PostgreSQL into an embedded one."""
    src = make_store()
    if make_store.kind == "sqlite":
        from lookalike.stores.postgres import PostgresStore

        dst = PostgresStore(request.getfixturevalue("pg_url"))
    else:
        from lookalike.stores.sqlite import SQLiteStore

        dst = SQLiteStore(tmp_path / "copy")
    request.addfinalizer(dst.close)
    src.set_model_info("test-model", "1", DIM)
    src.write(upserts=[record(i, copy_features=blob(i), extras=("copies",)) for i in range(3)] + [record(3)])
    migrate(src, dst)
    got = dst.copy_features(list(ids_of(dst).values()))
    assert sorted(got.values()) == sorted(blob(i) for i in range(3))
    assert [p for _, p in dst.missing_extras("copies")] == ["/photos/a/img0003.jpg"]
