"""Embedded store specifics: schema version, atomic batches, the faiss index following other processes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from lookalike.errors import LookalikeError
from lookalike.stores.base import ImageRecord
from lookalike.stores.sqlite import MIGRATIONS, SQLiteStore


def _rec(path: str, seed: int, dim: int = 8) -> ImageRecord:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return ImageRecord(path=path, size=1, mtime=1.0, sha=f"sha{seed}", width=10, height=10,
                       embedding=v / np.linalg.norm(v), class_scores=np.full(4, 0.25, np.float32),
                       tags=[(1, 0.5)], texts={"caption": f"a photo of thing {seed}"})


def test_schema_version_and_newer_refused(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path)
    assert s.schema_version == len(MIGRATIONS)
    s.close()
    con = sqlite3.connect(tmp_path / "lookalike.db")
    con.execute(f"PRAGMA user_version={len(MIGRATIONS) + 5}")
    con.close()
    with pytest.raises(LookalikeError, match="newer than this lookalike"):
        SQLiteStore(tmp_path)


def test_failed_batch_writes_nothing(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path)
    s.set_model_info("m", "1", 8)
    s.write(upserts=[_rec("/a.jpg", 1)])
    bad = _rec("/b.jpg", 2)
    bad.tags = [(1, 0.5), (1, 0.4)]  # duplicate primary key: the whole batch must roll back
    with pytest.raises(sqlite3.IntegrityError):
        s.write(upserts=[_rec("/c.jpg", 3), bad])
    assert set(s.file_states()) == {"/a.jpg"}
    assert s.count() == 1


def test_index_follows_writes_from_another_connection(tmp_path: Path) -> None:
    reader, writer = SQLiteStore(tmp_path), SQLiteStore(tmp_path)
    writer.set_model_info("m", "1", 8)
    writer.write(upserts=[_rec("/a.jpg", 1), _rec("/b.jpg", 2)])
    q = _rec("/b.jpg", 2).embedding
    assert reader.knn(q, 1)[0].score > 0.999
    b_id = writer.get_by_path("/b.jpg").id  # type: ignore[union-attr]
    writer.write(deletes=[b_id])
    assert all(h.id != b_id for h in reader.knn(q, 5))
    writer.write(upserts=[_rec("/c.jpg", 3)])
    hits = reader.knn(_rec("/c.jpg", 3).embedding, 1)
    assert reader.get([hits[0].id])[0].path == "/c.jpg"


def test_text_search_is_injection_safe(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path)
    s.set_model_info("m", "1", 8)
    s.write(upserts=[_rec("/a.jpg", 1)])
    assert s.text_search('thing" OR 1=1 --', 5)  # quoted terms, no FTS syntax errors
    assert s.text_search("NEAR(", 5) == []
