"""``lookalike serve`` as a user runs it: a real process listening on a loopback port."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from email.message import Message
from pathlib import Path

import pytest

import lookalike
from lookalike.server.command import is_loopback

SRC = str(Path(lookalike.__file__).resolve().parents[1])


def run_cli(*args: str, **kw: object) -> subprocess.Popen:  # type: ignore[type-arg]
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("LOOKALIKE_TOKEN", None)
    return subprocess.Popen([sys.executable, "-m", "lookalike.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)  # type: ignore[call-overload]


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[str, str]:  # type: ignore[type-arg]
    """Output of a process expected to exit by itself; killed if it does not."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, token: str | None = None, body: dict | None = None,  # type: ignore[type-arg]
            timeout: float = 10) -> tuple[int, dict, Message]:  # type: ignore[type-arg]
    """(status, JSON, headers) of a GET, or of a POST of ``body`` as JSON, on a new connection."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read()), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), err.headers


def get_json(url: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    """(status, JSON) of a GET, or of a POST of ``body`` as JSON."""
    return request(url, token, body)[:2]  # type: ignore[return-value]


def serving(proc: subprocess.Popen, timeout: float = 60) -> dict:  # type: ignore[type-arg]
    """What a ``serve --json`` process prints once the model is loaded, just before listening (url, docs),
    returned once it answers /api/health."""
    first = proc.stdout.readline()
    assert first, proc.stderr.read()
    info = json.loads(first)
    end = time.monotonic() + timeout
    while True:
        try:
            get_json(info["url"] + "api/health")
            return info
        except OSError:
            assert time.monotonic() < end and proc.poll() is None, proc.stderr.read()
            time.sleep(0.1)


def stop(*procs: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Ctrl-C each server, as a user stops it; killed after 20 s (its return code then fails the test)."""
    for proc in procs:
        proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_runs_and_stops(library, settings) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    proc = run_cli("serve", "--library", str(settings.library), "--port", str(port), "--token", "tok", "--json")
    try:
        info = serving(proc)
        assert info["url"] == f"http://127.0.0.1:{port}/" and info["docs"].endswith("/docs")
        status, body = get_json(info["url"] + "api/health")
        assert status == 200 and body["token_required"] is True
        assert get_json(info["url"] + "api/stats")[0] == 401
        status, stats = get_json(info["url"] + "api/stats", token="tok")
        assert status == 200 and stats["images"] == 11
        status, res = get_json(info["url"] + "api/search?q=guitar&limit=1", token="tok")
        assert res["results"][0]["name"] == "guitar.jpg"
        assert malformed(port) == (400, "application/json")  # uvicorn's own answer, in the API's shape
    finally:
        stop(proc)
    assert proc.returncode == 0


def malformed(port: int) -> tuple[int, str]:
    """A request h11 refuses (a header line without a colon): its status and content type, the body checked."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    error = json.loads(body)
    assert error["status"] == 400 and error["error"].startswith("malformed HTTP request"), error
    return int(lines[0].split()[1]), headers["content-type"]


def test_serve_port_in_use_is_one_line(settings) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_cli("serve", "--library", str(settings.library), "--port", str(port))
        out, err = finish(proc)
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lookalike: error: cannot listen on 127.0.0.1:")
    assert "--port" in lines[0]


def test_serve_rejects_a_zero_upload_cap(settings) -> None:  # type: ignore[no-untyped-def]
    proc = run_cli("serve", "--library", str(settings.library), "--max-upload-mb", "0")
    _, err = finish(proc)
    assert proc.returncode == 2 and err.strip().startswith("lookalike serve: error: argument --max-upload-mb: must be at least 1")


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                            ("0.0.0.0", False), ("192.168.1.5", False), ("example.org", False)])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_two_servers_on_one_library_see_each_others_photos(tmp_path: Path) -> None:
    """Several `lookalike serve` processes on one library (behind a proxy, docs/server.md): a photo indexed
    through one is found through the other, which started before it was indexed."""
    from lookalike.samples import copy_samples

    copy_samples(tmp_path / "photos", ["coffee", "rocket"])
    copy_samples(tmp_path / "later", ["guitar"])
    lib = tmp_path / "lib"
    assert run_cli("index", str(tmp_path / "photos"), "--library", str(lib), "-q").wait(120) == 0
    procs = [run_cli("serve", "--library", str(lib), "--port", str(free_port()), "--index-root", str(tmp_path),
                     "--json") for _ in range(2)]
    try:
        first, second = (serving(p, timeout=90)["url"] for p in procs)
        assert get_json(second + "api/stats")[1]["images"] == 2
        status, job = get_json(first + "api/index", body={"folder": str(tmp_path / "later")})
        assert status in (200, 202), job
        end = time.monotonic() + 120
        while job["state"] not in ("done", "failed"):
            assert time.monotonic() < end, job
            time.sleep(0.2)
            job = get_json(first + f"api/index/{job['id']}")[1]
        assert job["state"] == "done" and job["summary"]["indexed"] == 1, job
        assert get_json(second + "api/stats")[1]["images"] == 3
        found = get_json(second + "api/search?q=guitar&limit=1")[1]["results"]
        assert found and found[0]["name"] == "guitar.jpg"
        assert get_json(second + f"api/index/{job['id']}")[0] == 404  # a job is its own server's (docs/server.md)
    finally:
        stop(*procs)
    assert [p.returncode for p in procs] == [0, 0]


def answered_by(url: str, body: dict | None = None) -> tuple[int, dict, str | None, str | None]:  # type: ignore[type-arg]
    """(status, JSON, X-Lookalike-Worker, X-Lookalike-Forwarded-By) of one request on a new connection."""
    status, out, headers = request(url, body=body, timeout=30)
    return status, out, headers.get("x-lookalike-worker"), headers.get("x-lookalike-forwarded-by")


def children(pid: int) -> set[int]:
    try:
        return {int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def spawned_workers(pid: int) -> dict[int, int]:
    """The server workers among a supervisor's children (not multiprocessing's resource tracker), worker
    index -> pid, by the name each gives itself (pids need not come in the order the workers started)."""
    out = {}
    for child in children(pid):
        try:
            name = Path(f"/proc/{child}/comm").read_text().strip()
        except OSError:
            continue
        if name.startswith("lookalike-w"):
            out[int(name.removeprefix("lookalike-w"))] = child
    return out


def running(pid: int) -> bool:
    """Whether the process runs (a zombie waiting to be reaped by whoever adopted it does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_workers_share_one_port_and_worker_0_runs_the_jobs(tmp_path: Path) -> None:
    """`serve --workers 2`: both processes answer on the one port; an indexing job started through either is
    worker 0's, and its progress can be read through either (the other forwards); what it indexed is found
    through both; Ctrl+C stops every process."""
    from lookalike.samples import copy_samples

    copy_samples(tmp_path / "photos", ["coffee", "rocket"])
    copy_samples(tmp_path / "later", ["guitar"])
    lib = tmp_path / "lib"
    assert run_cli("index", str(tmp_path / "photos"), "--library", str(lib), "-q").wait(120) == 0
    proc = run_cli("serve", "--library", str(lib), "--port", str(free_port()), "--index-root", str(tmp_path),
                   "--workers", "2", "--json")
    workers: set[int] = set()
    try:
        info = serving(proc, timeout=120)
        assert info["workers"] == 2
        url = info["url"]
        workers = children(proc.pid)
        assert malformed(int(url.rsplit(":", 1)[1].strip("/"))) == (400, "application/json")  # in the workers too
        seen = set()
        for _ in range(300):  # the kernel gives each new connection to one of them
            status, health, worker, _ = answered_by(url + "api/health")
            assert status == 200 and health["status"] == "ok"
            seen.add(worker)
            if seen == {"0", "1"}:
                break
        assert seen == {"0", "1"}
        status, job, worker, forwarded = answered_by(url + "api/index", {"folder": str(tmp_path / "later")})
        assert status == 202 and worker == "0", job
        via = set()
        end = time.monotonic() + 120
        while job["state"] not in ("done", "failed") or via != {None, "1"}:
            assert time.monotonic() < end, (job, via)
            status, job, worker, forwarded = answered_by(url + f"api/index/{job['id']}")
            assert status == 200 and worker == "0", job  # never a 404 from the worker without the job
            via.add(forwarded)
        assert job["state"] == "done" and job["summary"]["indexed"] == 1, job
        found_by = set()
        for _ in range(300):
            status, res, worker, _ = answered_by(url + "api/search?q=guitar&limit=1")
            assert status == 200 and res["results"][0]["name"] == "guitar.jpg"
            found_by.add(worker)
            if found_by == {"0", "1"}:
                break
        assert found_by == {"0", "1"}
        status, err, _, forwarded = answered_by(url + "api/index", {"folder": "/"})
        assert status == 403 and forwarded in (None, "1") and "outside the folders" in err["error"]
        port = int(url.rsplit(":", 1)[1].strip("/"))
        for _ in range(20):  # a job route under another Host: refused by whichever worker takes it (DNS rebinding)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.putrequest("GET", f"/api/index/{job['id']}", skip_host=True)
            conn.putheader("Host", f"evil.example:{port}")
            conn.endheaders()
            r = conn.getresponse()
            assert r.status == 403 and b"does not name this machine" in r.read()
            conn.close()
    finally:
        stop(proc)
    assert proc.returncode == 0
    assert len(workers) >= 2
    end = time.monotonic() + 10
    while any(running(pid) for pid in workers):  # the workers (and multiprocessing's tracker) are gone
        assert time.monotonic() < end, [(pid, running(pid)) for pid in workers]
        time.sleep(0.1)


def test_workers_must_be_at_least_one(settings) -> None:  # type: ignore[no-untyped-def]
    proc = run_cli("serve", "--library", str(settings.library), "--workers", "0")
    _, err = finish(proc)
    assert proc.returncode == 2 and err.strip().startswith("lookalike serve: error: argument --workers: must be at least 1")


def test_a_dead_worker_is_started_again(settings) -> None:  # type: ignore[no-untyped-def]
    """A worker killed (a crash, the out-of-memory killer) is replaced, with one line; the port keeps
    answering meanwhile and both workers answer again."""
    proc = run_cli("serve", "--library", str(settings.library), "--port", str(free_port()), "--workers", "2",
                   "--json")
    try:
        url = serving(proc, timeout=120)["url"]

        def workers() -> list[int]:
            return list(spawned_workers(proc.pid).values())

        first = workers()
        assert len(first) == 2
        os.kill(spawned_workers(proc.pid)[1], signal.SIGKILL)
        end = time.monotonic() + 120
        seen: set[str | None] = set()
        while seen != {"0", "1"} or len(set(workers()) - set(first)) != 1:
            assert time.monotonic() < end and proc.poll() is None, (seen, workers())
            try:
                status, _, worker, _ = answered_by(url + "api/health")
            except OSError:  # the killed worker's queued connection
                continue
            assert status == 200
            seen.add(worker)
    finally:
        stop(proc)
    assert proc.returncode == 0
    err = proc.stderr.read()
    assert "lookalike: server worker 1 exited (status -9); starting it again" in err.splitlines(), err


def test_a_worker_that_keeps_dying_stops_the_server_with_one_line(settings) -> None:  # type: ignore[no-untyped-def]
    """A crash loop (more than 3 restarts within a minute): the others are stopped, one last line, exit 1."""
    proc = run_cli("serve", "--library", str(settings.library), "--port", str(free_port()), "--workers", "2",
                   "--json")
    killed: set[int] = set()
    try:
        serving(proc, timeout=120)
        end = time.monotonic() + 120
        while proc.poll() is None:
            assert time.monotonic() < end, killed
            spawned = spawned_workers(proc.pid)
            if len(spawned) == 2 and spawned[1] not in killed:
                os.kill(spawned[1], signal.SIGKILL)
                killed.add(spawned[1])
            time.sleep(0.05)
        _, err = finish(proc)
    finally:
        if proc.poll() is None:
            stop(proc)
    assert proc.returncode == 1 and len(killed) == 4, (killed, proc.returncode)
    lines = err.strip().splitlines()
    assert lines[-1].startswith("lookalike: error: server worker ") and "the 4th time within 60 s" in lines[-1], err
    assert sum("starting it again" in line for line in lines) == 3, err
