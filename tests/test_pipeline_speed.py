"""The fast indexing path (lookalike.indexer.prepare, decode_workers; engines end to end; the throughput bench):
phone-size JPEGs are decoded reduced and hashed once, with vectors equal to a full decode, and both engines
build the same index."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.config import Settings
from lookalike.indexer import decode_workers, prepare
from lookalike.io.crawl import FileEntry
from lookalike.io.read import content_hash, decode
from lookalike.library import Library
from lookalike.models.registry import load_model
from lookalike.samples import copy_samples, sample_photos

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def model():  # type: ignore[no-untyped-def]
    return load_model("efficientnet-lite0")  # the default engine: ONNX Runtime where installed


@pytest.fixture(scope="session")
def phone_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real photo as a 12 MP phone shot: 4000x3000 pixels stored landscape, EXIF orientation 6, quality 90."""
    src = sample_photos()["interior_pexels-4543103"]  # 1920x2875 portrait
    with Image.open(src) as im:
        img = im.convert("RGB").resize((3000, 4000), Image.Resampling.BICUBIC).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[271], exif[272], exif[306], exif[0x0112] = "Acme", "Acme Phone 12", "2024:05:17 09:30:00", 6
    path = tmp_path_factory.mktemp("phone") / "IMG_0001.JPG"
    img.save(path, "JPEG", quality=90, exif=exif.tobytes())
    return path


def _entry(p: Path) -> FileEntry:
    st = p.stat()
    return FileEntry(str(p), st.st_size, st.st_mtime)


def test_prepare_reads_a_phone_photo_reduced_and_hashes_it_once(model, phone_jpeg, monkeypatch):
    import hashlib

    calls = []
    real = hashlib.blake2b
    monkeypatch.setattr(hashlib, "blake2b", lambda *a, **k: calls.append(1) or real(*a, **k))
    w = prepare(_entry(phone_jpeg), model, Settings.from_env({}))
    assert w.error is None
    assert len(calls) == 1  # one content hash per file
    assert w.sha == content_hash(phone_jpeg.read_bytes())
    assert w.pixels is not None and w.pixels.shape == (224, 224, 3) and w.pixels.dtype == np.uint8
    assert (w.width, w.height) == (3000, 4000)  # full size, portrait after the EXIF rotation
    assert w.taken_at == "2024-05-17T09:30:00" and w.camera == "Acme Phone 12"
    assert w.phash and len(w.phash) == 16
    # the JPEG was decoded DCT-scaled (1/8 here), never at 12 MP
    d = decode(phone_jpeg.read_bytes(), min_side=256)
    assert max(d.image.size) <= 4000 // 8 + 1 and min(d.image.size) >= 256


def test_reduced_decode_gives_the_vectors_of_a_full_decode(model, phone_jpeg):
    data = phone_jpeg.read_bytes()
    fast = prepare(_entry(phone_jpeg), model, Settings.from_env({})).pixels
    full = model.preprocess(decode(data, min_side=None).image)  # 12 MP decoded at full size
    enc = model.forward(np.stack([fast, full]))  # type: ignore[list-item]
    assert float(enc.embeddings[0] @ enc.embeddings[1]) >= 0.99
    assert enc.class_scores is not None
    assert enc.class_scores[0].argmax() == enc.class_scores[1].argmax()


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "empty file"),
    (b"just some text, not a picture", "not an image"),
])
def test_prepare_reports_bad_files_in_one_line(model, tmp_path, content, reason):
    p = tmp_path / "bad.jpg"
    p.write_bytes(content)
    w = prepare(_entry(p), model, Settings.from_env({}))
    assert w.pixels is None and w.error and reason in w.error and "\n" not in w.error


def test_prepare_reports_a_truncated_phone_photo(model, phone_jpeg, tmp_path):
    p = tmp_path / "cut.jpg"
    p.write_bytes(phone_jpeg.read_bytes()[: phone_jpeg.stat().st_size // 2])
    w = prepare(_entry(p), model, Settings.from_env({}))
    assert w.pixels is None and w.error and "truncated" in w.error


def test_prepare_reports_a_file_over_the_size_limit(model, phone_jpeg):
    w = prepare(_entry(phone_jpeg), model, Settings.from_env({}, max_file_mb=1))
    assert w.pixels is None and w.error and "too large" in w.error


class _Gpu:
    device = "cuda:0"


def test_decode_workers():
    assert decode_workers(Settings.from_env({}, workers=3), _Gpu()) == 3  # type: ignore[arg-type]
    cpu = load_model("efficientnet-lite0")
    assert decode_workers(Settings.from_env({}), cpu) == Settings.from_env({}).decode_workers()
    assert decode_workers(Settings.from_env({}), _Gpu()) == max(2, os.cpu_count() or 2)  # type: ignore[arg-type]


def test_index_batch_by_device(tmp_path):
    from lookalike.indexer import Indexer
    from lookalike.stores.sqlite import SQLiteStore

    assert Settings.from_env({}).index_batch("cpu") == 8 and Settings.from_env({}).index_batch("cuda:0") == 32
    assert Settings.from_env({}, batch_size=5).index_batch("cuda") == 5  # the setting wins on any device
    assert Settings.from_env({"LOOKALIKE_BATCH_SIZE": "3"}).index_batch() == 3
    store = SQLiteStore(tmp_path / "lib")
    assert Indexer(store, _Gpu(), Settings.from_env({})).batch_size == 32  # type: ignore[arg-type]
    assert Indexer(store, load_model("efficientnet-lite0"), Settings.from_env({})).batch_size == 8  # type: ignore[arg-type]


def test_both_engines_build_the_same_index(tmp_path):
    photos = tmp_path / "photos"
    copy_samples(photos, ["chelsea", "coffee", "rocket", "china", "flower", "interior_pexels-2416933"])
    vectors = {}
    for engine in ("onnx", "torch"):
        with Library(tmp_path / f"lib-{engine}", engine=engine) as lib:
            summary = lib.index([photos])
            assert summary.indexed == 6 and not summary.skipped
            assert lib.model.engine == engine  # type: ignore[attr-defined]
            states = lib.store.file_states()
            ids = [states[p].id for p in sorted(states)]
            emb, cls = lib.store.vectors(ids)
            vectors[engine] = (emb, cls, [lib.store.get([i])[0].tags for i in ids])
    (e1, c1, t1), (e2, c2, t2) = vectors["onnx"], vectors["torch"]
    assert ((e1 * e2).sum(axis=1) >= 0.999).all()
    assert c1 is not None and c2 is not None and (c1.argmax(axis=1) == c2.argmax(axis=1)).all()
    assert [t[0][0] for t in t1] == [t[0][0] for t in t2]  # same top tag per photo


def _bench_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("index_throughput", ROOT / "bench" / "index_throughput.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["index_throughput"] = mod  # its image builder runs in worker processes
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_bench_builds_distinct_phone_jpegs(tmp_path):
    bench = _bench_module()
    paths = bench.build_set(4, [0.5, 0.3], seed=3, cache=tmp_path)
    assert len(paths) == 4 and len({content_hash(p.read_bytes()) for p in paths}) == 4
    for p, mp in zip(paths, [0.5, 0.3, 0.5, 0.3]):
        with Image.open(p) as im:
            assert im.format == "JPEG"
            w, h = im.size
            assert abs(w * h / 1e6 - mp) < 0.02 and abs(max(w, h) / min(w, h) - 4 / 3) < 0.01
            assert im.getexif().get(0x0112) in (None, 6)
    assert bench.build_set(4, [0.5, 0.3], seed=3, cache=tmp_path) == paths  # cached, not rebuilt


def test_bench_json_reports_side_by_side_figures(tmp_path, capsys):
    bench = _bench_module()
    assert bench.main(["--count", "6", "--sizes", "0.5", "--repeat", "1", "--batch-size", "4", "--json",
                       "--cache", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("model_only_ips", "end_to_end_ips", "ratio", "peak_rss_mb", "device"):
        assert key in out
    assert out["model_only_ips"] > 0 and out["end_to_end_ips"] > 0 and out["peak_rss_mb"] > 50
    assert out["ratio"] == pytest.approx(out["end_to_end_ips"] / out["model_only_ips"], rel=0.02)
    assert out["device"].startswith("cpu")
