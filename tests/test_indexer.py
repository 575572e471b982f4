"""Indexing: incremental runs (add, change, move, copy, delete), bad files, kill -9 and resume."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from lookalike.library import Library
from lookalike.samples import copy_samples, sample_photos

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _paths(lib: Library) -> set[str]:
    return set(lib.store.file_states())


def test_incremental_add_change_move_delete(tmp_path: Path, new_library) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "photos"
    copy_samples(folder, ["chelsea", "coffee", "rocket"])
    lib = new_library()
    s = lib.index([folder])
    assert (s.indexed, s.unchanged, s.removed) == (3, 0, 0)

    s = lib.index([folder])  # nothing changed: nothing read
    assert (s.indexed, s.unchanged) == (0, 3)

    copy_samples(folder, ["astronaut"])  # add
    s = lib.index([folder])
    assert (s.indexed, s.unchanged) == (1, 3)

    rocket_id = lib.store.get_by_path(str(folder / "rocket.jpg")).id  # type: ignore[union-attr]
    (folder / "sub").mkdir()
    os.rename(folder / "rocket.jpg", folder / "sub" / "renamed rocket.jpg")  # move: not re-embedded
    s = lib.index([folder])
    assert (s.indexed, s.moved, s.removed) == (0, 1, 0)
    moved = lib.store.get_by_path(str(folder / "sub" / "renamed rocket.jpg"))
    assert moved is not None and moved.id == rocket_id

    with Image.open(folder / "coffee.jpg") as im:  # change content in place
        ImageOps.mirror(im).save(folder / "coffee.jpg", quality=80)
    s = lib.index([folder])
    assert s.indexed == 1

    os.utime(folder / "chelsea.jpg", (time.time() + 10, time.time() + 10))  # touched, same bytes
    s = lib.index([folder])
    assert (s.indexed, s.touched) == (0, 1)

    shutil.copyfile(folder / "chelsea.jpg", folder / "chelsea copy.jpg")  # copy: vectors reused
    s = lib.index([folder])
    assert (s.indexed, s.reused) == (0, 1)
    a, b = (lib.store.get_by_path(str(folder / n)) for n in ("chelsea.jpg", "chelsea copy.jpg"))
    va, _ = lib.store.vectors([a.id])  # type: ignore[union-attr]
    vb, _ = lib.store.vectors([b.id])  # type: ignore[union-attr]
    assert np.array_equal(va, vb)

    (folder / "astronaut.jpg").unlink()  # delete
    s = lib.index([folder])
    assert s.removed == 1
    assert _paths(lib) == {str(folder / n) for n in ("chelsea.jpg", "chelsea copy.jpg", "coffee.jpg",
                                                     "sub/renamed rocket.jpg")}
    # the search index follows every change
    res = lib.search(image=folder / "sub" / "renamed rocket.jpg", limit=1)
    assert res.results[0].path == str(folder / "sub" / "renamed rocket.jpg")


def test_a_file_swapped_in_with_the_same_size_and_mtime_is_read_again(tmp_path: Path, new_library) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "photos"
    copy_samples(folder, ["chelsea", "coffee"])
    lib = new_library()
    lib.index([folder])
    target = folder / "chelsea.jpg"
    old_ino = os.stat(target).st_ino
    shutil.copy2(target, tmp_path / "same.jpg")  # the same bytes, size and mtime, another inode (cp -p, restore)
    os.replace(tmp_path / "same.jpg", target)
    assert os.stat(target).st_ino != old_ino
    s = lib.index([folder])
    assert (s.indexed, s.unchanged, s.touched) == (0, 1, 1)  # read again and hashed, not embedded
    assert lib.store.file_states()[str(target)].ino == os.stat(target).st_ino  # served again (server/files.py)


def test_rehash_reads_every_file_and_embeds_only_those_rewritten_in_place(tmp_path: Path, new_library) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "photos"
    copy_samples(folder, ["chelsea", "coffee", "rocket"])
    lib = new_library()
    lib.index([folder])
    before = lib.store.file_states()
    s = lib.index([folder], rehash=True)  # nothing changed: all read, nothing written
    assert (s.indexed, s.unchanged, s.touched, s.elsewhere) == (0, 3, 0, 0), s.as_dict()
    target = folder / "coffee.jpg"
    st = os.stat(target)
    with Image.open(folder / "chelsea.jpg") as im:  # other bytes, the same size, inode and mtime
        other = io.BytesIO()
        im.save(other, "JPEG", quality=90)
    with open(target, "r+b") as fh:
        fh.write(other.getvalue()[: st.st_size].ljust(st.st_size, b"\0"))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert lib.index([folder]).unchanged == 3  # an ordinary run goes by the stat: it cannot tell
    s = lib.index([folder], rehash=True)
    assert (s.indexed, s.unchanged) == (1, 2), s.as_dict()
    after = lib.store.file_states()
    assert after[str(target)].sha != before[str(target)].sha and after[str(target)].id == before[str(target)].id
    assert lib.search(image=folder / "chelsea.jpg", limit=2).results[1].path == str(target)


def test_indexing_one_folder_leaves_others(tmp_path: Path, new_library) -> None:  # type: ignore[no-untyped-def]
    copy_samples(tmp_path / "a", ["chelsea"])
    copy_samples(tmp_path / "b", ["coffee"])
    lib = new_library()
    lib.index([tmp_path / "a"])
    lib.index([tmp_path / "b"])
    (tmp_path / "a" / "chelsea.jpg").unlink()
    s = lib.index([tmp_path / "b"])  # a's missing file is not under b: untouched
    assert s.removed == 0 and len(_paths(lib)) == 2


def test_bad_files_skipped_with_reasons(tmp_path: Path, new_library) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "mixed"
    copy_samples(folder, ["chelsea", "coffee"])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("not an image at all\n" * 50)
    good = (folder / "chelsea.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 3])
    Image.new("1", (12_000, 12_000)).save(folder / "bomb.png")
    (folder / "ünïcödé 猫.jpg").write_bytes(good[: len(good)] + b"")
    lib = new_library()
    s = lib.index([folder])
    reasons = {Path(p).name: r for p, r in s.skipped}
    assert set(reasons) == {"empty.jpg", "text.jpg", "truncated.jpg", "bomb.png"}
    assert "empty" in reasons["empty.jpg"] and "not an image" in reasons["text.jpg"]
    assert "truncated" in reasons["truncated.jpg"] and "decompression bomb" in reasons["bomb.png"]
    assert all("\n" not in r for r in reasons.values())
    assert s.indexed + s.reused == 3  # chelsea, coffee and the unicode-named copy of chelsea
    assert lib.search(text="cat", limit=3).results[0].path.endswith(("chelsea.jpg", "ünïcödé 猫.jpg"))
    assert "skipped 4" in s.line()


def _variants(folder: Path, n: int) -> None:
    """n distinct real-photo files (sample photos, rotated/cropped/recoloured so each is unique)."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = [p for k, p in sorted(sample_photos().items()) if not k.startswith("interior")]
    for i in range(n):
        with Image.open(photos[i % len(photos)]) as im:
            im = im.convert("RGB")
            k = i // len(photos)
            if k:
                im = im.rotate(7 * k, expand=True).crop((k, k, im.width - k, im.height - k))
            im.save(folder / f"img_{i:03d}.jpg", quality=88)


def _db_rows(library: Path) -> dict[str, tuple[str, bytes]]:
    con = sqlite3.connect(library / "lookalike.db")
    rows = con.execute("SELECT i.path, i.sha, v.embedding FROM images i JOIN vectors v ON v.image_id = i.id").fetchall()
    con.close()
    return {Path(p).name: (sha, emb) for p, sha, emb in rows}


def test_kill_9_then_resume_equals_clean_run(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    _variants(folder, 32)
    env = {**os.environ, "PYTHONPATH": SRC, "LOOKALIKE_BATCH_SIZE": "4"}
    cmd = [sys.executable, "-m", "lookalike.cli", "index", str(folder), "--quiet"]

    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, "--library", str(killed)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    n = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            n = len(_db_rows(killed))
        except sqlite3.Error:
            n = 0
        if n >= 8:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "indexing finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _db_rows(killed)
    assert 0 < len(partial) < 32  # killed mid-way, with whole batches committed
    con = sqlite3.connect(killed / "lookalike.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()

    resumed = subprocess.run([*cmd, "--library", str(killed), "--json"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f'"unchanged": {len(partial)}' in resumed.stdout  # committed work is not redone

    clean = tmp_path / "clean"
    out = subprocess.run([*cmd, "--library", str(clean)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    a, b = _db_rows(killed), _db_rows(clean)
    assert set(a) == set(b) and len(a) == 32
    for name in a:
        assert a[name][0] == b[name][0]
        va, vb = np.frombuffer(a[name][1], "<f4"), np.frombuffer(b[name][1], "<f4")
        assert float(va @ vb) > 0.9999


def test_model_switch_reembeds(tmp_path: Path, new_library) -> None:  # type: ignore[no-untyped-def]
    copy_samples(tmp_path / "p", ["chelsea", "coffee"])
    lib = new_library()
    lib.index([tmp_path / "p"])
    lib.store.set_model_info("some-other-model", "v0", 1280)  # as if another model had built it
    s = lib.index([tmp_path / "p"])
    assert s.indexed == 2
    assert lib.store.model_info()["name"] == "efficientnet-lite0"  # type: ignore[index]


def test_bookkeeping_with_a_fake_model_needs_no_torch(tmp_path: Path) -> None:
    """Library(settings, model=...) indexes with the small model from tests/fakes.py: add, touch, move, copy
    and delete are recorded as such (nothing re-embedded but the new content), in a process without torch."""
    script = f"""
import json, os, shutil, sys, time
sys.path.insert(0, {str(Path(__file__).parent)!r})
from fakes import ThumbnailModel
from lookalike.library import Library
from lookalike.samples import copy_samples

folder = {str(tmp_path / "photos")!r}
copy_samples(folder, ["chelsea", "coffee", "rocket"])
model = ThumbnailModel()
out = {{}}
with Library({str(tmp_path / "lib")!r}, model=model) as lib:
    s = lib.index([folder]); out["add"] = (s.indexed, model.batches)
    os.utime(os.path.join(folder, "coffee.jpg"), (time.time() + 10, time.time() + 10))
    s = lib.index([folder]); out["touch"] = (s.touched, s.indexed)
    os.mkdir(os.path.join(folder, "sub"))
    os.rename(os.path.join(folder, "rocket.jpg"), os.path.join(folder, "sub", "rocket.jpg"))
    s = lib.index([folder]); out["move"] = (s.moved, s.indexed)
    shutil.copyfile(os.path.join(folder, "chelsea.jpg"), os.path.join(folder, "chelsea copy.jpg"))
    s = lib.index([folder]); out["copy"] = (s.reused, s.indexed)
    os.remove(os.path.join(folder, "coffee.jpg"))
    s = lib.index([folder]); out["delete"] = (s.removed, s.indexed)
    out["batches"] = model.batches
    out["paths"] = sorted(os.path.relpath(p, folder) for p in lib.store.file_states())
    out["model"] = lib.store.model_info()["name"]
    hits = lib.search(image=os.path.join(folder, "sub", "rocket.jpg"), limit=1).results
    out["self_match"] = os.path.relpath(hits[0].path, folder)
out["torch"] = "torch" in sys.modules
print(json.dumps(out))
"""
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["add"] == [3, 1]  # three photos, one batch through the model
    assert got["touch"] == [1, 0] and got["move"] == [1, 0] and got["copy"] == [1, 0] and got["delete"] == [1, 0]
    assert got["batches"] == 1  # nothing after the first run went through the model
    assert got["paths"] == ["chelsea copy.jpg", "chelsea.jpg", os.path.join("sub", "rocket.jpg")]
    assert got["model"] == "test-thumbnail" and got["self_match"] == os.path.join("sub", "rocket.jpg")
    assert got["torch"] is False


def test_decide_touch_move_copy_embed() -> None:
    from lookalike.indexer import decide
    from lookalike.stores.base import FileState

    here = FileState(1, "/p/a.jpg", 10, 1.0, "s1")
    gone = FileState(2, "/p/old.jpg", 10, 1.0, "s2")
    other = FileState(3, "/p/b.jpg", 10, 1.0, "s2")
    asked: list[str] = []

    def lookup(rows):  # type: ignore[no-untyped-def]
        return lambda: asked.append("lookup") or rows

    assert decide("/p/a.jpg", "s1", here, [], set(), lookup([])).action == "touch" and not asked  # same content
    d = decide("/p/new.jpg", "s2", None, [gone], set(), lookup([gone, other]))
    assert (d.action, d.sources) == ("move", (gone,)) and not asked  # content vanished from another path
    d = decide("/p/new.jpg", "s2", None, [gone], {gone.id}, lookup([gone, other, FileState(4, "/p/new.jpg", 1, 1, "s2")]))
    assert (d.action, d.sources) == ("copy", (gone, other))  # the vanished row is claimed by another move
    d = decide("/p/a.jpg", "s2", here, [gone], set(), lookup([other]))
    assert (d.action, d.sources) == ("copy", (other,))  # changed in place: never a move onto an indexed path
    assert decide("/p/c.jpg", "s9", None, [], set(), lookup([])).action == "embed"
    assert asked == ["lookup"] * 3  # the store is asked only when neither touch nor move applies


def test_one_decode_workers_policy() -> None:
    from lookalike.config import Settings
    from lookalike.indexer import decode_workers

    class Gpu:
        device = "cuda:0"

    settings = Settings.from_env({})
    assert decode_workers(settings, Gpu()) == settings.decode_workers("cuda:0") == max(2, os.cpu_count() or 2)  # type: ignore[arg-type]
    assert settings.decode_workers() == max(2, min(8, os.cpu_count() or 2))
    assert Settings.from_env({}, workers=3).decode_workers("cuda:0") == 3


def test_model_change_is_logged_and_reembeds(tmp_path: Path, fake_model, caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    copy_samples(tmp_path / "photos", ["chelsea", "coffee"])
    with Library(tmp_path / "lib", model=fake_model) as lib:
        lib.store.set_model_info("some-other-model", "v0", 48)  # as if another model had built it
        with caplog.at_level(logging.WARNING, logger="lookalike"):
            assert lib.index([tmp_path / "photos"]).indexed == 2
        assert "re-embedding every image with test-thumbnail (1)" in caplog.text
        assert lib.store.model_info() == {"name": "test-thumbnail", "version": "1", "dim": "48"}
        caplog.clear()
        assert lib.index([tmp_path / "photos"]).unchanged == 2 and "re-embedding" not in caplog.text


# -- hardening (issue 12) -------------------------------------------------------------------------------------
def test_fifo_device_and_outside_links_do_not_hang_or_leak(tmp_path: Path, new_library) -> None:  # type: ignore[no-untyped-def]
    folder, outside = tmp_path / "photos", tmp_path / "outside"
    copy_samples(folder, ["coffee"])
    copy_samples(outside, ["rocket"])
    os.mkfifo(folder / "x.jpg")  # opening it would block forever
    os.symlink("/dev/zero", folder / "z.jpg")  # reading it would never end
    os.symlink(outside / "rocket.jpg", folder / "leak.jpg")
    lib = new_library()
    s = lib.index([folder])
    reasons = dict(s.skipped)
    assert s.indexed == 1 and sorted(lib.store.file_states()) == [str(folder / "coffee.jpg")]
    assert "FIFO" in reasons[str(folder / "x.jpg")]
    assert "outside the indexed folders" in reasons[str(folder / "z.jpg")]
    assert "outside the indexed folders" in reasons[str(folder / "leak.jpg")]
    follow = new_library("follow", follow_symlinks=True)
    s = follow.index([folder])
    assert "character device" in dict(s.skipped)[str(folder / "z.jpg")]
    assert sorted(follow.store.file_states()) == [str(outside / "rocket.jpg"), str(folder / "coffee.jpg")]
    assert follow.index([folder]).unchanged == 2  # the followed file is known on the next run, not re-read


def test_known_content_is_hashed_but_not_decoded(new_library, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import lookalike.indexer as indexer

    folder = tmp_path / "photos"
    copy_samples(folder, ["chelsea", "coffee", "rocket"])
    lib = new_library()
    assert lib.index([folder]).indexed == 3
    decoded: list[int] = []
    real = indexer.decode
    monkeypatch.setattr(indexer, "decode", lambda data, **kw: decoded.append(len(data)) or real(data, **kw))
    shutil.copyfile(folder / "chelsea.jpg", folder / "chelsea copy.jpg")  # a copy
    os.rename(folder / "rocket.jpg", folder / "rocket moved.jpg")  # a move
    os.utime(folder / "coffee.jpg", (time.time() + 10, time.time() + 10))  # touched
    s = lib.index([folder])
    assert (s.indexed, s.reused, s.moved, s.touched) == (0, 1, 1, 1)
    assert decoded == []  # none of the three was decoded
    copy_samples(folder, ["astronaut"])  # new content still is
    assert lib.index([folder]).indexed == 1 and len(decoded) == 1


def test_perceptual_hash_is_imagehash_phash_on_real_photos() -> None:
    """The indexer's own phash (no scipy) gives imagehash.phash's 16 hex digits, bit for bit, on every sample
    photo as the indexer decodes it (DCT-scaled) and at full size, in colour and grey."""
    import imagehash

    from lookalike.indexer import perceptual_hash
    from lookalike.io.read import decode

    photos = sorted(sample_photos().values())
    assert len(photos) >= 20
    for p in photos:
        data = p.read_bytes()
        for image in (decode(data, min_side=256).image, decode(data, min_side=None).image.convert("L")):
            assert perceptual_hash(image) == str(imagehash.phash(image)), p.name


def test_decoding_in_one_block_gives_the_same_pixels() -> None:
    """decode() hands the decoder all the bytes at once (not 64 kB blocks): the same pixels as Pillow's own
    load, for a large phone-like JPEG and a truncated one still refused."""
    import io

    from lookalike.errors import ImageError
    from lookalike.io.read import decode

    src = max(sample_photos().values(), key=lambda p: p.stat().st_size)
    with Image.open(src) as im:
        big = ImageOps.exif_transpose(im).convert("RGB").resize((3000, 2000))
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    assert len(data) > 3 * 65536
    with Image.open(io.BytesIO(data)) as ref:
        ref.draft("RGB", (256, 256))
        ref.load()
        assert decode(data, min_side=256).image.tobytes() == ref.convert("RGB").tobytes()
    try:
        decode(data[: len(data) // 2], min_side=256)
    except ImageError as err:
        assert "truncated" in str(err)
    else:
        raise AssertionError("a truncated JPEG was decoded")
