"""Duplicates over the REST API as a job (issue 12, item 8), the write token, and dates the API refuses (item 10)."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from lookalike.samples import copy_samples
from lookalike.server.app import create_app

from .test_app import assert_error


def _library_with_copies(fresh_library, folder: Path):  # type: ignore[no-untyped-def]
    copy_samples(folder, ["rocket", "coffee", "tent"])
    with Image.open(folder / "rocket.jpg") as im:
        im.crop((0, 0, im.width * 3 // 4, im.height * 3 // 4)).save(folder / "rocket-crop.jpg", quality=90)
    lib = fresh_library()
    lib.index([folder])
    return lib


def test_dupes_job_start_poll_result_and_cache(fresh_library, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "photos"
    lib = _library_with_copies(fresh_library, folder)
    c = TestClient(create_app(lib))
    r = c.post("/api/dupes/jobs", json={"method": "verified"})
    assert r.status_code == 202 and r.headers["location"].endswith(f"/api/dupes/jobs/{r.json()['id']}")
    job_id = r.json()["id"]
    for _ in range(600):
        d = c.get(f"/api/dupes/jobs/{job_id}").json()
        if d["state"] != "running" and d["state"] != "queued":
            break
        time.sleep(0.05)
    assert d["state"] == "done" and d["fraction"] == 1.0 or d["total"] == 0, d
    groups = d["result"]["groups"]
    assert [sorted(i["name"] for i in g["items"]) for g in groups] == [["rocket-crop.jpg", "rocket.jpg"]]
    # the same question on the same index: the same job, not a second computation
    assert c.post("/api/dupes/jobs", json={"method": "verified"}).json()["id"] == job_id
    again = c.get("/api/dupes")
    assert again.status_code == 200 and again.json()["groups"] == groups
    # the index changes: the cached result is no longer current
    copy_samples(folder, ["guitar"])
    lib.index([folder])
    assert c.post("/api/dupes/jobs", json={"method": "verified"}).json()["id"] != job_id
    assert_error(c.get("/api/dupes/jobs/0123abc"), 404, "no duplicates job")
    assert_error(c.get("/api/dupes/jobs/../../etc"), 404)


def test_one_job_at_a_time_and_cancel(fresh_library, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lib = _library_with_copies(fresh_library, tmp_path / "photos")
    c = TestClient(create_app(lib))
    first = c.post("/api/dupes/jobs", json={"method": "verified"}).json()
    with lib.store.lock:  # the job's next read of the store waits here: it is certainly still running meanwhile
        assert first["state"] in ("queued", "running")
        assert_error(c.post("/api/dupes/jobs", json={"method": "phash"}), 409, "already running")
        r = c.get("/api/dupes", params={"method": "embedding", "wait": 0})
        assert_error(r, 409, "already running")
        assert c.delete(f"/api/dupes/jobs/{first['id']}").status_code == 200
    jobs = c.app.state.dupes_jobs  # type: ignore[attr-defined]
    job = jobs.wait(jobs.get(first["id"]), 30)
    assert job.state == "cancelled" and job.report is None
    done = c.get("/api/dupes", params={"method": "phash", "wait": 30})  # free again
    assert done.status_code == 200 and "groups" in done.json()


def test_write_token_guards_what_writes_or_costs_minutes(client_with) -> None:  # type: ignore[no-untyped-def]
    c = client_with(write_token="w-secret")
    assert c.get("/api/search", params={"q": "cat"}).status_code == 200  # reading needs no token here
    assert_error(c.get("/api/dupes"), 401, "write token")
    assert_error(c.post("/api/dupes/jobs", json={}), 401, "write token")
    assert_error(c.post("/api/index", json={"folder": "/nowhere"}), 401, "write token")
    assert_error(c.post("/api/dupes/undo", json={}), 401, "write token")
    assert_error(c.get("/api/dupes", headers={"Authorization": "Bearer wrong"}), 401)
    ok = c.get("/api/dupes", params={"wait": 30}, headers={"Authorization": "Bearer w-secret"})
    assert ok.status_code in (200, 202)
    both = client_with(token="read", write_token="write")
    assert_error(both.get("/api/dupes", headers={"Authorization": "Bearer read"}), 401, "write token")
    # the write token opens what the reading token opens, and more; the web page's cookie may hold either
    header = {"Authorization": "Bearer write"}
    assert both.get("/api/dupes", params={"method": "phash", "wait": 30}, headers=header).status_code in (200, 202)
    assert both.get("/api/search", params={"q": "cat"}, headers=header).status_code == 200
    assert_error(both.get("/api/search", params={"q": "cat"}), 401, "API token")
    both.cookies.set("lookalike_token", "write")
    assert both.get("/api/dupes", params={"method": "phash", "wait": 30}).status_code in (200, 202)
    both.cookies.set("lookalike_token", "read")  # the page's reading cookie, the write token in a header
    assert both.get("/api/dupes", params={"method": "phash", "wait": 30}, headers=header).status_code in (200, 202)
    assert_error(both.get("/api/dupes", params={"method": "phash"}), 401, "write token")


def test_invalid_dates_refused(client: TestClient) -> None:
    for bad in ("2021-13-45", "2021-01-01xyz", "2021-02-30", "21-01-01"):
        assert_error(client.get("/api/search", params={"q": "cat", "after": bad}), 422, "after")
        assert_error(client.post("/api/search/text", json={"q": "cat", "before": bad}), 422, "before")
    assert client.get("/api/search", params={"q": "cat", "after": "2021-02-28"}).status_code == 200


def test_a_cancelled_job_keeps_its_verdicts_and_the_next_verifies_the_rest(fresh_library, tmp_path: Path,
                                                                            monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import threading

    from lookalike.search import verify

    folder = tmp_path / "photos"
    copy_samples(folder, ["coffee", "chelsea", "interior_pexels-7303773", "interior_pexels-cup-of-couple-7303788"])
    with Image.open(folder / "coffee.jpg") as im:
        im.crop((0, 0, im.width * 3 // 5, im.height * 3 // 5)).save(folder / "coffee-crop.jpg", quality=90)
        im.rotate(20).save(folder / "coffee-rotated.jpg", quality=90)
    lib = fresh_library(workers=1)  # one verifying thread
    lib.index([folder])
    first_pair, go = threading.Event(), threading.Event()
    real_match = verify.match

    def match(*args, **kw):  # type: ignore[no-untyped-def]
        m = real_match(*args, **kw)
        if not first_pair.is_set():  # hold the first verified pair until the job has been cancelled
            first_pair.set()
            go.wait(30)
        return m

    monkeypatch.setattr(verify, "match", match)
    c = TestClient(create_app(lib))
    job_id = c.post("/api/dupes/jobs", json={"method": "verified"}).json()["id"]
    assert first_pair.wait(120)
    assert c.delete(f"/api/dupes/jobs/{job_id}").status_code == 200
    go.set()
    jobs = c.app.state.dupes_jobs  # type: ignore[attr-defined]
    assert jobs.wait(jobs.get(job_id), 60).state == "cancelled"
    from lookalike.search.dupe_verify import pair_version

    kept = len(lib.store.dupe_pairs(pair_version(lib.store)))
    r = c.get("/api/dupes", params={"wait": 30})  # the next job: only the pairs the cancelled one did not verify
    assert r.status_code == 200
    d = r.json()
    assert 1 <= kept < d["uncertain"] and d["reused"] == kept and d["verified"] == d["uncertain"] - kept
    report = lib.dupes()  # and a run now verifies nothing at all
    assert report.verified == 0 and report.reused == report.uncertain == d["uncertain"]
