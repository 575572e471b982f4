"""The micro-batcher (models/batching.py): concurrent callers share forward passes and each gets its own
image's vectors, equal to an unbatched pass; errors reach every caller of the failed pass. No timings: the
passes are made to overlap with a gate that holds the first pass until the others have queued."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.io.read import load
from lookalike.models.base import Encoded
from lookalike.models.batching import BatchingModel


class Gated:
    """A real model whose first ``forward`` waits until ``ready()`` holds (at most ``limit`` s)."""

    def __init__(self, inner, ready, limit: float = 60.0) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.ready, self.limit = inner, ready, limit
        self.calls: list[int] = []  # batch size of every forward pass
        self.fail_next = False

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    def forward(self, batch: np.ndarray) -> Encoded:
        if not self.calls:
            end = time.monotonic() + self.limit
            while not self.ready() and time.monotonic() < end:
                time.sleep(0.001)
        self.calls.append(len(batch))
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("engine failure")
        return self.inner.forward(batch)


def _images(photos: Path, n: int) -> list[Image.Image]:
    files = sorted(photos.glob("*.jpg"))[:n]
    assert len(files) == n
    return [load(str(p)).image for p in files]


def _concurrently(n: int, fn) -> list[object]:  # type: ignore[no-untyped-def]
    out: list[object] = [None] * n

    def run(i: int) -> None:
        try:
            out[i] = fn(i)
        except BaseException as err:  # noqa: BLE001
            out[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_each_caller_gets_its_own_vectors_equal_to_unbatched(photos: Path, model) -> None:  # type: ignore[no-untyped-def]
    images = _images(photos, 12)
    want = [model.encode([im]) for im in images]  # one at a time, no batcher
    batcher: BatchingModel
    gated = Gated(model, lambda: batcher.requests == len(images))  # the first pass waits for all to queue
    batcher = BatchingModel(gated, max_batch=16, slots=1, window_s=0)  # type: ignore[arg-type]
    got = _concurrently(len(images), lambda i: batcher.encode([images[i]]))
    assert len(gated.calls) == 2 and sum(gated.calls) == len(images)  # the first pass, then all the rest in one
    assert batcher.passes == 2 and batcher.requests == len(images)
    for w, g in zip(want, got, strict=True):
        assert isinstance(g, Encoded)
        assert g.embeddings.shape == (1, model.dim)
        np.testing.assert_allclose(g.embeddings, w.embeddings, atol=2e-4)
        assert g.class_scores is not None and w.class_scores is not None
        np.testing.assert_allclose(g.class_scores, w.class_scores, atol=2e-4)
        assert int(g.class_scores.argmax()) == int(w.class_scores.argmax())


def test_batches_of_several_images_and_the_batch_cap(fake_model) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 256, (k, 32, 32, 3), np.uint8) for k in (3, 1, 2, 4, 1, 5)]
    batcher: BatchingModel
    gated = Gated(fake_model, lambda: batcher.requests == len(batches))
    batcher = BatchingModel(gated, max_batch=6, slots=1, window_s=0)  # type: ignore[arg-type]
    got = _concurrently(len(batches), lambda i: batcher.forward(batches[i]))
    assert all(n <= 6 for n in gated.calls[1:])  # a pass takes whole requests up to the cap
    assert sum(gated.calls) == sum(len(b) for b in batches)
    for b, g in zip(batches, got, strict=True):
        assert isinstance(g, Encoded)
        np.testing.assert_allclose(g.embeddings, fake_model.forward(b).embeddings, atol=1e-6)


def test_an_error_reaches_every_caller_of_that_pass_and_the_next_pass_works(fake_model) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    batches = [rng.integers(0, 256, (1, 32, 32, 3), np.uint8) for _ in range(5)]
    batcher: BatchingModel
    gated = Gated(fake_model, lambda: batcher.requests == len(batches))
    batcher = BatchingModel(gated, max_batch=16, slots=1, window_s=0)  # type: ignore[arg-type]
    gated.fail_next = True  # the first pass fails (every caller in it); the next one works
    got = _concurrently(len(batches), lambda i: batcher.forward(batches[i]))
    failed = [g for g in got if isinstance(g, RuntimeError)]
    assert len(failed) == gated.calls[0] and all(str(e) == "engine failure" for e in failed)
    assert sum(isinstance(g, Encoded) for g in got) == len(batches) - gated.calls[0]
    assert sum(gated.calls) == len(batches)
    again = batcher.forward(batches[0])
    np.testing.assert_allclose(again.embeddings, fake_model.forward(batches[0]).embeddings, atol=1e-6)


def test_protocol_passes_through(fake_model) -> None:  # type: ignore[no-untyped-def]
    b = BatchingModel(fake_model)
    assert (b.name, b.version, b.dim, b.input_size) == (fake_model.name, fake_model.version, 48, 32)
    assert b.encode([]).embeddings.shape == (0, 48)
    assert b.slots >= 1


@pytest.mark.parametrize("batching", [True, False])
def test_library_queries_go_through_the_batcher_unless_off(indexed, photos: Path, batching: bool) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    lib = indexed.with_settings(replace(indexed.settings, query_batching=batching))
    assert isinstance(lib.query_model, BatchingModel) is batching
    query = photos / "black_cat.jpg"
    got = _concurrently(6, lambda i: lib.search(image=str(query), limit=3))
    ids = [[r.id for r in res.results] for res in got]  # type: ignore[attr-defined]
    assert all(x == ids[0] for x in ids) and ids[0]
    assert got[0].results[0].path.endswith("black_cat.jpg")  # type: ignore[attr-defined]
