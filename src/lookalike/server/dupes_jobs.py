"""Duplicates for the REST API as a job: start, poll, cancel; one at a time; the result cached until the index
changes.

Finding duplicates costs minutes on a large library (each uncertain pair is verified geometrically), so it
never runs inside a request: ``POST /api/dupes/jobs`` starts it in a background thread (409 while another
runs), ``GET /api/dupes/jobs/{id}`` reports its stage and progress and, once done, the groups, ``DELETE``
cancels it (the search stops at its next progress report). ``GET /api/dupes`` answers from the cache when the
result is current, else starts (or joins) the job and waits at most ``wait`` seconds for it: 200 with the
groups, or 202 with the job to poll. A result is current while the index has not changed since it was
computed: the index's signature is a hash over every image's (id, path, size, mtime, sha).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from lookalike.config import DUPES_METHODS
from lookalike.errors import LookalikeError
from lookalike.server.jobs import JOB_NICENESS, JobRunning, JobTable, lower_priority
from lookalike.stores.base import Filters

log = logging.getLogger("lookalike.server")
MAX_WAIT_S = 30.0
JobId = Annotated[str, PathParam(max_length=64, pattern=r"^[0-9a-f]{1,64}$", description="a duplicates job's id")]


class Cancelled(Exception):
    """Raised from the progress callback to stop a cancelled job."""


class DupesParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal[DUPES_METHODS] = Field(DUPES_METHODS[0], description="verified, embedding or phash")  # type: ignore[valid-type]
    threshold: float | None = Field(None, ge=0, le=1, allow_inf_nan=False,
                                    description="similarity above which two photos are copies (default: the method's)")
    folder: str | None = Field(None, max_length=4096, description="only images in this folder and below")

    def key(self) -> tuple[object, ...]:
        return (self.method, self.threshold, self.folder or None)


class DupesQuery(DupesParams):
    """The same, as query parameters (beside ``wait``)."""

    model_config = ConfigDict(extra="ignore")


@dataclass
class DupesJob:
    id: str
    params: DupesParams
    signature: str
    state: str = "queued"  # queued -> running -> done | failed | cancelled
    stage: str = "starting"
    done: int = 0
    total: int = 0
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    report: Any = None  # the DupesReport, once done
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    def as_dict(self) -> dict[str, object]:
        end = self.finished_at or time.time()
        return {"id": self.id, "state": self.state, "stage": self.stage, "done": self.done, "total": self.total,
                "fraction": round(self.done / self.total, 4) if self.total else (1.0 if self.state == "done" else 0.0),
                "elapsed_s": round(end - self.created_at, 2), "params": self.params.model_dump(),
                "error": self.error, "result": None}


def index_signature(lib) -> str:  # type: ignore[no-untyped-def]
    """Changes whenever an image is added, removed, moved or changed."""
    h = hashlib.blake2b(digest_size=16)
    for path, st in sorted(lib.store.file_states().items()):
        h.update(f"{st.id}\0{path}\0{st.size}\0{st.mtime!r}\0{st.sha}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


class DupesJobs(JobTable):
    what = "duplicates job"

    def start(self, params: DupesParams) -> DupesJob:
        """The current result for ``params`` if there is one, the running job for them, or a new job."""
        with self._lock:
            running = self._active()
        if running is not None:  # decided without reading the store
            if running.params.key() == params.key():
                return running
            raise JobRunning(f"a duplicates job is already running (job {running.id}); wait for it or cancel it "
                             f"(DELETE /api/dupes/jobs/{running.id})")
        signature = index_signature(self.library)
        with self._lock:
            for job in reversed(self._jobs.values()):
                if job.params.key() == params.key() and job.signature == signature and job.state == "done":
                    return job
            if self._active() is not None:
                raise JobRunning("a duplicates job was started meanwhile; wait for it or cancel it")
            job = DupesJob(uuid.uuid4().hex[:12], params, signature)
            self._remember(job)
        threading.Thread(target=self._run, args=(job,), name=f"dupes-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> DupesJob:
        return self._find(job_id)

    def cancel(self, job_id: str) -> DupesJob:
        job = self.get(job_id)
        if job.active:
            job.cancel.set()
        return job

    def wait(self, job: DupesJob, timeout: float) -> DupesJob:
        end = time.monotonic() + timeout
        while job.active and time.monotonic() < end:
            time.sleep(0.02)
        return job

    def _run(self, job: DupesJob) -> None:
        job.state = "running"
        lower_priority(JOB_NICENESS)

        def on_progress(stage: str, done: int, total: int) -> None:
            if job.cancel.is_set():
                raise Cancelled
            job.stage, job.done, job.total = stage, done, total

        p = job.params
        try:
            on_progress("reading", 0, 0)
            job.report = self.library.dupes(method=p.method, threshold=p.threshold,
                                            filters=Filters(folder=p.folder or None), on_progress=on_progress)
            if job.cancel.is_set():  # asked before the end: cancelled, even if the last step was done
                raise Cancelled
            job.stage, job.state = "done", "done"
        except Cancelled:
            job.state, job.error = "cancelled", "cancelled on request"
        except LookalikeError as err:
            job.error, job.state = str(err), "failed"
        except Exception as err:  # noqa: BLE001 - a job never takes the server down
            log.exception("duplicates job %s failed", job.id)
            job.error, job.state = f"unexpected error: {type(err).__name__}: {err}", "failed"
        finally:
            job.finished_at = time.time()


def dupes_routes(api) -> APIRouter:  # type: ignore[no-untyped-def]
    """The duplicates endpoints (``api``: the app's ``_Api``; ``api.require_write`` guards them all)."""
    from lookalike.server.openapi import errors

    r = APIRouter(prefix="/api", tags=["duplicates"], dependencies=[Depends(api.require_write)])
    jobs: DupesJobs = api.dupes_jobs

    def show(request: Request, job: DupesJob) -> dict[str, Any]:
        d = job.as_dict()
        if job.state == "done":
            d["result"] = api.present_dupes(request, job.report)
        return d

    @r.get("/dupes", summary="Groups of exact and near duplicates: the current result, or the job computing it",
           responses={200: {"description": "the groups (current for this index)"},
                      202: {"description": "still computing: poll the job at Location"}, **errors(400, 409, 422)})
    def dupes(request: Request, response: Response, params: Annotated[DupesQuery, Query()],
              wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S, allow_inf_nan=False,
                                           description="seconds to wait for a result (default 10)")] = 10.0,
              ) -> dict[str, Any]:
        job = jobs.wait(jobs.start(DupesParams(**params.model_dump())), wait)
        if job.state == "done":
            return api.present_dupes(request, job.report)
        if job.state in ("failed", "cancelled"):
            raise LookalikeError(f"finding duplicates failed: {job.error}")
        response.status_code = 202
        response.headers["Location"] = f"{request.scope.get('root_path', '')}/api/dupes/jobs/{job.id}"
        return show(request, job)

    @r.post("/dupes/jobs", status_code=202, summary="Start finding duplicates (or join the job that does)",
            responses=errors(400, 409, 422))
    def start(request: Request, body: DupesParams, response: Response) -> dict[str, Any]:
        job = jobs.start(body)
        response.headers["Location"] = f"{request.scope.get('root_path', '')}/api/dupes/jobs/{job.id}"
        return show(request, job)

    @r.get("/dupes/jobs/{job_id}", summary="A duplicates job's stage and progress and, once done, its groups",
           responses=errors(404, 422))
    def poll(request: Request, job_id: JobId) -> dict[str, Any]:
        return show(request, jobs.get(job_id))

    @r.delete("/dupes/jobs/{job_id}", summary="Cancel a duplicates job", responses=errors(404, 422))
    def cancel(request: Request, job_id: JobId) -> dict[str, Any]:
        return show(request, jobs.cancel(job_id))

    return r
