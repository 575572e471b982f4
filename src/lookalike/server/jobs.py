"""Indexing jobs for the REST API: one folder at a time, run by ``Library.index`` in a background thread."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from lookalike.errors import LookalikeError, NotFound

log = logging.getLogger("lookalike.server")
KEEP_JOBS = 20  # finished jobs remembered for GET /api/index/{id}
SHOW_SKIPPED = 50
JOB_NICENESS = 10  # indexing yields the CPU to searches: its threads (decoders, torch workers) inherit this


class JobRunning(LookalikeError):
    status = 409


@dataclass
class Job:
    id: str
    folder: str
    state: str = "queued"  # queued -> scanning -> running -> done | failed
    done: int = 0  # files read so far, of
    total: int = 0  # the files that are new or changed (known when scanning ends)
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    summary: dict[str, object] | None = None
    error: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ("queued", "scanning", "running")

    def as_dict(self) -> dict[str, object]:
        end = self.finished_at or time.time()
        return {
            "id": self.id, "folder": self.folder, "state": self.state, "done": self.done, "total": self.total,
            "fraction": round(self.done / self.total, 4) if self.total else (1.0 if self.state == "done" else 0.0),
            "elapsed_s": round(end - self.created_at, 2), "summary": self.summary, "error": self.error,
        }


class JobTable:
    """The jobs one kind of background work remembers (the newest ``KEEP_JOBS``), under one lock; shared by the
    indexing and the duplicates jobs. Each job has ``id`` and ``active``."""

    what = "job"

    def __init__(self, library) -> None:  # type: ignore[no-untyped-def]
        self.library = library
        self._jobs: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def _remember(self, job: Any) -> None:
        """Add ``job``, forgetting the oldest beyond ``KEEP_JOBS``; call with the lock held."""
        self._jobs[job.id] = job
        while len(self._jobs) > KEEP_JOBS:
            self._jobs.popitem(last=False)

    def _find(self, job_id: str) -> Any:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no {self.what} {job_id!r} (jobs are forgotten when the server restarts)")
        return job

    def _active(self) -> Any:
        """The running job, if any; call with the lock held."""
        return next((j for j in self._jobs.values() if j.active), None)


class IndexJobs(JobTable):
    what = "indexing job"

    def start(self, folder: str, *, rehash: bool = False) -> Job:
        with self._lock:
            running = self._active()
            if running is not None:
                raise JobRunning(f"an indexing job is already running ({running.folder}, job {running.id}); "
                                 "wait for it to finish")
            job = Job(uuid.uuid4().hex[:12], folder)
            self._remember(job)
        threading.Thread(target=self._run, args=(job, rehash), name=f"index-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> Job:
        return self._find(job_id)

    def latest(self) -> Job | None:
        with self._lock:
            return next(reversed(self._jobs.values()), None)

    def recent(self) -> list[Job]:
        with self._lock:
            return list(reversed(self._jobs.values()))


    def wait(self, job_id: str, timeout: float = 60.0) -> Job:
        """Block until the job is finished (for scripts and tests)."""
        end = time.monotonic() + timeout
        job = self.get(job_id)
        while job.active and time.monotonic() < end:
            time.sleep(0.05)
        return job

    def _run(self, job: Job, rehash: bool = False) -> None:
        job.state = "scanning"
        lower_priority(JOB_NICENESS)

        def on_progress(done: int, total: int) -> None:
            job.state, job.done, job.total = "running", done, total

        try:
            summary = self.library.index([job.folder], on_progress=on_progress, rehash=rehash).as_dict()
            skipped = summary.get("skipped") or []
            summary["skipped_count"] = len(skipped)  # type: ignore[arg-type]
            summary["skipped"] = skipped[:SHOW_SKIPPED]  # type: ignore[index]
            job.summary = summary
            job.state = "done"
        except LookalikeError as err:
            job.error, job.state = str(err), "failed"
        except Exception as err:  # noqa: BLE001 - a job never takes the server down
            log.exception("indexing job %s failed", job.id)
            job.error, job.state = f"unexpected error: {type(err).__name__}: {err}", "failed"
        finally:
            job.finished_at = time.time()


def lower_priority(niceness: int) -> None:
    """Raise this thread's nice value by `niceness` above the server's own (Linux: per thread; threads it starts
    later inherit it; capped at 19). Relative, so that a server started under `nice` still ranks its searches
    above its jobs (an absolute 10 under `nice` was the server's own value: no priority at all). Searches keep
    their latency while a job runs; the job gets the CPU whenever searches leave it idle, and the scheduler
    still gives it a share (CFS weights, never starved)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
    except (AttributeError, OSError):  # not on this platform: the job just runs at normal priority
        pass
