"""A micro-batcher in front of a model: concurrent ``forward`` calls (image queries arriving together at the
server) are stacked into one forward pass, and each caller gets back its own rows.

Algorithm (leader/follower, no extra thread): a caller appends its batch to a queue. While fewer than
``slots`` forward passes are running, the oldest waiting caller becomes a leader: it waits up to ``window_s``
for more callers (only while the queue holds fewer than ``max_batch`` images and another pass is already
running; a lone caller on an idle model never waits), takes queued batches in arrival order up to
``max_batch`` images, runs one ``forward`` on them outside the lock, hands every caller its slice (or the
exception) and wakes them. The others wait on the condition; a caller whose batch was not taken yet may become
the next leader. Results never mix: each request keeps its own row range of the stacked batch.

``slots`` defaults to the cores this process may use on the CPU (ONNX Runtime and torch run concurrent
sessions in parallel; the server gives each call one thread) and to 1 on a GPU.

Why: on 2 cores one batch-1 forward pass of EfficientNet-Lite0 (ONNX Runtime, one thread) cost 17.4 ms of CPU
against 15.3 ms per image in a batch of 16, and 16 clients' uploads otherwise run as 16 concurrent passes
contending for the same two cores. ``WINDOW_S`` (2 ms) is small against a forward pass (15-20 ms of CPU);
``MAX_BATCH`` (16) is the number of clients of bench/serve_load.py. Both measured there (docs/server.md).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from lookalike.models.base import Encoded, Model

WINDOW_S = 0.002
MAX_BATCH = 16


class _Request:
    __slots__ = ("batch", "result", "error", "taken", "done")

    def __init__(self, batch: np.ndarray) -> None:
        self.batch = batch
        self.result: Encoded | None = None
        self.error: BaseException | None = None
        self.taken = False  # in a pass (no longer queued)
        self.done = False


class BatchingModel:
    """``model`` behind a micro-batcher: the same protocol (name, version, dim, ``preprocess``, ``forward``,
    ``encode``), other attributes passed through. Thread-safe; ``forward`` of one caller is never reordered
    with respect to its own rows."""

    def __init__(self, model: Model, *, max_batch: int = MAX_BATCH, window_s: float = WINDOW_S,
                 slots: int | None = None) -> None:
        self.inner = model
        self.max_batch = max(1, int(max_batch))
        self.window_s = max(0.0, float(window_s))
        if slots is None:
            from lookalike.models.onnxrt import cores

            slots = 1 if str(getattr(model, "device", "cpu")).startswith("cuda") else cores()
        self.slots = max(1, int(slots))
        self._cond = threading.Condition()
        self._queue: deque[_Request] = deque()
        self._running = 0
        self._gathering = 0  # leaders waiting for company
        self.passes = 0  # forward passes run (for tests and benchmarks)
        self.requests = 0

    # the model protocol, delegated
    def __getattr__(self, name: str) -> Any:  # name, version, dim, input_size, num_classes, device, engine, ...
        return getattr(self.__dict__["inner"], name)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self.inner.preprocess(image)

    def encode(self, images: Sequence[Image.Image]) -> Encoded:
        if not images:
            return self.inner.encode(images)
        return self.forward(np.stack([self.inner.preprocess(im) for im in images]))

    def forward(self, batch: np.ndarray) -> Encoded:
        req = _Request(batch)
        with self._cond:
            self._queue.append(req)
            self.requests += 1
            if self._gathering:
                self._cond.notify_all()
        while True:
            taken = self._take(req)
            if taken is None:  # answered by another caller's pass
                break
            self._run(taken)
            if req.done:
                break
        if req.error is not None:
            raise req.error
        assert req.result is not None
        return req.result

    # -- internals ----------------------------------------------------------------------------------------
    def _take(self, req: _Request) -> list[_Request] | None:
        """Wait until ``req`` is answered (None) or a slot is free and ``req`` leads: the batches taken."""
        with self._cond:
            while not req.done:
                if not req.taken and self._running < self.slots and self._queue[0] is req:
                    break
                self._cond.wait()
            if req.done:
                return None
            self._running += 1
            if self.window_s and self._running > 1:  # another pass is busy on the cores: gather company
                end = time.monotonic() + self.window_s
                self._gathering += 1
                while self._images() < self.max_batch and (left := end - time.monotonic()) > 0:
                    self._cond.wait(left)
                self._gathering -= 1
            taken, n = [], 0
            while self._queue and (not taken or n + len(self._queue[0].batch) <= self.max_batch):
                r = self._queue.popleft()
                r.taken = True
                taken.append(r)
                n += len(r.batch)
            self._cond.notify_all()  # the next in line may lead in a free slot
            return taken

    def _images(self) -> int:
        return sum(len(r.batch) for r in self._queue)

    def _run(self, taken: list[_Request]) -> None:
        error: BaseException | None = None
        out: Encoded | None = None
        try:
            stacked = taken[0].batch if len(taken) == 1 else np.concatenate([r.batch for r in taken])
            out = self.inner.forward(stacked)
        except BaseException as err:  # noqa: BLE001 - handed to every caller of this pass
            error = err
        with self._cond:
            self._running -= 1
            self.passes += 1
            start = 0
            for r in taken:
                n = len(r.batch)
                if error is not None:
                    r.error = error
                else:
                    assert out is not None
                    r.result = Encoded(out.embeddings[start:start + n],
                                       None if out.class_scores is None else out.class_scores[start:start + n])
                start += n
                r.batch = np.empty((0,), np.uint8)  # drop the pixels now
                r.done = True
            self._cond.notify_all()
