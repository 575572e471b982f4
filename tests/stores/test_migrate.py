"""`lookalike migrate`: embedded store -> PostgreSQL -> embedded store, nothing lost, searches unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lookalike.cli import main
from lookalike.stores.base import FaceRecord, ImageRecord
from lookalike.stores.sqlite import SQLiteStore

pytest.importorskip("psycopg")
pytestmark = pytest.mark.postgres


def everything(store) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    """Every field of every image, by path (ids are store-local)."""
    states = store.file_states()
    infos = store.get([st.id for st in states.values()])
    emb, cls = store.vectors([i.id for i in infos])
    faces = store.faces([i.id for i in infos])
    out = {}
    for j, i in enumerate(infos):
        out[i.path] = (i.folder, i.size, i.mtime, i.sha, i.width, i.height, i.taken_at, i.camera, i.phash,
                       sorted(i.tags), i.texts, emb[j].tobytes(), None if cls is None else cls[j].tobytes(),
                       [(f.box, f.embedding.tobytes()) for f in faces.get(i.id, [])])
    return out


def test_real_library_round_trip_through_postgres(indexed, pg_url: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    src = indexed.settings.library
    assert main(["migrate", "--from", str(src), "--to", pg_url, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["verified"] and summary["images"] == indexed.store.count() and summary["tags"] > 0
    assert "***" in summary["destination"]  # the password is not printed
    back = tmp_path / "back"
    assert main(["migrate", "--from", pg_url, "--to", str(back), "--json"]) == 0
    capsys.readouterr()
    original, returned = SQLiteStore(src), SQLiteStore(back)
    assert everything(returned) == everything(original)
    assert returned.model_info() == original.model_info()
    # the same searches give the same answers from the copy in PostgreSQL
    from lookalike.config import Settings
    from lookalike.library import Library

    photo = next(iter(everything(original)))
    with Library(settings=Settings(db=pg_url)) as on_pg:
        for query in ("cat", "guitar"):
            want = [r.path for r in indexed.search(query, limit=5).results]
            assert [r.path for r in on_pg.search(query, limit=5).results] == want
        want = [r.path for r in indexed.search(image=photo, limit=5).results]
        assert [r.path for r in on_pg.search(image=photo, limit=5).results] == want
    original.close()
    returned.close()


def test_every_field_survives_and_a_second_copy_does_not_double(pg_url: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    lib = SQLiteStore(tmp_path / "lib")
    lib.set_model_info("m", "7", 16)
    rng = np.random.default_rng(0)
    recs = []
    for i in range(1203):  # more than two batches
        v = rng.normal(size=16).astype(np.float32)
        recs.append(ImageRecord(
            path=f"/photos/{i % 9}/ü {i}.jpg", size=i, mtime=1.6e9 + i / 3, sha=f"{i:040x}", width=i + 1, height=7,
            embedding=v / np.linalg.norm(v), class_scores=rng.random(10).astype(np.float32),
            tags=[(i % 10, 0.75), ((i + 1) % 10, 0.125)], texts={"ocr": f"sale {i}"} if i % 3 else {},
            taken_at="2019-01-02T03:04:05" if i % 2 else None, camera="Canon" if i % 4 else None, phash=f"{i:016x}",
            faces=[FaceRecord((i, 2, 30, 40), (v[:8] * 0.5).astype(np.float32))] * (i % 3),
            extras=("ocr", "faces") if i % 5 == 0 else ("faces",) if i % 5 == 1 else ()))
    lib.write(upserts=recs)
    lib.set_texts(lib.get_by_path("/photos/3/ü 3.jpg").id, {"description": "grandma's birthday"})
    lib.close()
    for _ in range(2):
        assert main(["migrate", "--from", str(tmp_path / "lib"), "--to", pg_url, "--batch", "500"]) == 0
    assert "verified" in capsys.readouterr().out
    assert main(["migrate", "--from", pg_url, "--to", str(tmp_path / "copy")]) == 0
    a, b = SQLiteStore(tmp_path / "lib"), SQLiteStore(tmp_path / "copy")
    assert len(everything(b)) == 1203 and everything(a) == everything(b)
    for kind in ("ocr", "faces"):
        assert {p for _, p in a.missing_extras(kind)} == {p for _, p in b.missing_extras(kind)}
    a.close()
    b.close()


def test_refusals_are_one_line(pg_url: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["migrate", "--from", str(tmp_path / "nothing"), "--to", pg_url]) == 2
    assert "no library in" in capsys.readouterr().err
    lib = SQLiteStore(tmp_path / "lib")
    lib.set_model_info("other-model", "1", 4)
    lib.write(upserts=[ImageRecord(path="/x.jpg", size=1, mtime=1.0, sha="s", width=1, height=1,
                                   embedding=np.array([1, 0, 0, 0], np.float32))])
    lib.close()
    from lookalike.stores.postgres import PostgresStore

    pg = PostgresStore(pg_url)
    pg.set_model_info("m", "1", 4)
    pg.write(upserts=[ImageRecord(path="/y.jpg", size=1, mtime=1.0, sha="t", width=1, height=1,
                                  embedding=np.array([0, 1, 0, 0], np.float32))])
    pg.close()
    assert main(["migrate", "--from", str(tmp_path / "lib"), "--to", pg_url]) == 2
    err = capsys.readouterr().err
    assert "embedded by m" in err and err.count("\n") == 1
    assert main(["migrate", "--from", pg_url, "--to", pg_url]) == 2


def test_taught_words_survive_migrate_both_ways(new_library, photos: Path, pg_url: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    lib = new_library()
    lib.index([photos])
    lib.teach("whiskers", [str(photos / "chelsea.jpg"), str(photos / "black_cat.jpg")], [str(photos / "puppy.jpg")])
    want = [(r.path, round(r.score, 5)) for r in lib.search("whiskers", limit=5).results]
    assert main(["migrate", "--from", str(lib.settings.library), "--to", pg_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["concepts"] == 1
    from lookalike.config import Settings
    from lookalike.library import Library

    with Library(settings=Settings(db=pg_url)) as on_pg:
        (c,) = on_pg.concepts()
        assert c["word"] == "whiskers" and c["counter_examples"] == [str(photos / "puppy.jpg")]
        assert [(r.path, round(r.score, 5)) for r in on_pg.search("whiskers", limit=5).results] == want
    back = tmp_path / "back"
    assert main(["migrate", "--from", pg_url, "--to", str(back), "--json"]) == 0
    capsys.readouterr()
    original, returned = SQLiteStore(lib.settings.library), SQLiteStore(back)
    a, b = original.concept("whiskers"), returned.concept("whiskers")
    assert np.array_equal(a.weights, b.weights) and a.bias == b.bias and a.validation == b.validation
    assert [(e.path, e.positive, e.embedding.tobytes()) for e in a.examples] == \
        [(e.path, e.positive, e.embedding.tobytes()) for e in b.examples]
    original.close()
    returned.close()
    # the word taught differently in a destination is left there, said so, not overwritten
    other = new_library("other")
    other.index([photos])
    other.teach("whiskers", [str(photos / "puppy.jpg")])
    theirs = SQLiteStore(other.settings.library).concept("whiskers")
    other.close()
    assert main(["migrate", "--from", str(lib.settings.library), "--to", str(other.settings.library), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["concepts_kept"] == ["whiskers"] and out["concepts"] == 0 and out["verified"]
    kept = SQLiteStore(other.settings.library).concept("whiskers")
    assert [e.path for e in kept.examples] == [e.path for e in theirs.examples] == [str(photos / "puppy.jpg")]
