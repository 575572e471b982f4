"""The server hands out only what it indexed, from inside its roots (issue 12, items 1, 4, 5).

Originals and thumbnails are opened without following any symlink and checked with fstat (device, inode,
size, mtime as indexed); symlinks that lead outside the indexed folders are neither indexed nor served."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from lookalike.samples import copy_samples
from lookalike.server.app import create_app

from .test_app import assert_error


def _same_size_and_mtime(target: Path, like: Path) -> None:
    """Pad/cut ``target`` to ``like``'s size and give it ``like``'s mtime (an attacker's file, made to match)."""
    data = target.read_bytes()
    size = like.stat().st_size
    target.write_bytes((data + b"\0" * size)[:size])
    st = like.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_links_outside_the_roots_are_not_indexed_nor_served(fresh_library, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, outside = tmp_path / "photos", tmp_path / "private"
    copy_samples(root, ["tent"])
    copy_samples(outside, ["rocket", "coffee"])
    os.symlink(outside / "rocket.jpg", root / "rocket.jpg")  # a file link
    os.symlink(outside, root / "more")  # a folder link
    lib = fresh_library()
    c = TestClient(create_app(lib))
    r = c.post("/api/index", json={"folder": str(root)})
    assert r.status_code == 202, r.text
    job = c.app.state.jobs.wait(r.json()["id"], timeout=120)  # type: ignore[attr-defined]
    assert job.state == "done", job.error
    reasons = {s["path"]: s["reason"] for s in job.summary["skipped"]}  # type: ignore[index]
    assert "outside the indexed folders" in reasons[str(root / "rocket.jpg")]
    assert "outside the indexed folders" in reasons[str(root / "more")]
    assert sorted(lib.store.file_states()) == [str(root / "tent.jpg")]
    for image_id in range(1, 5):  # nothing else has an id to be served by
        if image_id != lib.store.get_by_path(str(root / "tent.jpg")).id:
            assert c.get(f"/api/images/{image_id}/file").status_code == 404


def test_a_fifo_does_not_hang_an_indexing_job(fresh_library, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "photos"
    copy_samples(root, ["tent"])
    os.mkfifo(root / "x.jpg")
    lib = fresh_library()
    c = TestClient(create_app(lib))
    job = c.app.state.jobs.wait(c.post("/api/index", json={"folder": str(root)}).json()["id"], timeout=60)  # type: ignore[attr-defined]
    assert job.state == "done" and job.summary["indexed"] == 1  # type: ignore[index]
    assert "FIFO" in {s["path"]: s["reason"] for s in job.summary["skipped"]}[str(root / "x.jpg")]  # type: ignore[index]
    assert c.post("/api/index", json={"folder": str(root)}).status_code == 202  # no job left hanging: not 409


def test_a_photo_swapped_for_a_matching_symlink_is_refused(fresh_library, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "photos"
    copy_samples(root, ["tent", "rocket", "coffee"])
    lib = fresh_library()
    lib.index([root])
    c = TestClient(create_app(lib))
    ids = {p.stem: lib.store.get_by_path(str(p)).id for p in root.iterdir()}
    assert c.get(f"/api/images/{ids['tent']}/file").content == (root / "tent.jpg").read_bytes()
    secret = tmp_path / "id_rsa"
    secret.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n")
    _same_size_and_mtime(secret, root / "rocket.jpg")
    link = root / ".swap"
    os.symlink(secret, link)
    os.replace(link, root / "rocket.jpg")  # the photo is now a link to the key, same size and mtime
    for what in ("file", "thumb"):
        r = c.get(f"/api/images/{ids['rocket']}/{what}")
        assert_error(r, 409, "no longer the file that was indexed", "symlink")
        assert b"PRIVATE KEY" not in r.content
    # another regular file in its place (a new inode), same size and mtime
    other = tmp_path / "other.bin"
    other.write_bytes(b"not the photo")
    _same_size_and_mtime(other, root / "coffee.jpg")
    os.replace(other, root / "coffee.jpg")
    assert_error(c.get(f"/api/images/{ids['coffee']}/file"), 409, "another file is in its place")
    # the folder on the way swapped for a link to where the very same file now lives
    moved = tmp_path / "moved"
    shutil.move(str(root), str(moved))
    os.symlink(moved, root)
    assert_error(c.get(f"/api/images/{ids['tent']}/file"), 409, "symlink")
    os.unlink(root)
    shutil.move(str(moved), str(root))
    assert c.get(f"/api/images/{ids['tent']}/file").status_code == 200
    # a FIFO put in its place: refused at once, nothing blocks
    os.unlink(root / "tent.jpg")
    os.mkfifo(root / "tent.jpg")
    assert_error(c.get(f"/api/images/{ids['tent']}/file"), 409, "FIFO")
