"""Watch mode (lookalike/watch.py) with real file operations on a real library: new files, a burst of many
files batched into few index runs, edits in place, moves, deletions, the watched folder removed and re-created;
and the `lookalike watch` and `serve --watch` commands as processes. A short debounce (1 s) keeps it quick."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from lookalike.watch import Watcher, _outermost

SRC = str(Path(__file__).resolve().parents[1] / "src")
DEBOUNCE = 1.0  # watch.MIN_DEBOUNCE_S


def wait_for(cond: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Runs:
    def __init__(self) -> None:
        self.summaries: list[tuple[object, int]] = []
        self.lock = threading.Lock()

    def __call__(self, summary, changes: int) -> None:  # type: ignore[no-untyped-def]
        with self.lock:
            self.summaries.append((summary, changes))

    def __len__(self) -> int:
        return len(self.summaries)


def settled(runs: Runs, quiet: float = DEBOUNCE * 2, timeout: float = 60.0) -> int:
    """The number of runs once none has come for ``quiet`` seconds: a run's summary is recorded after its writes,
    so the index can show a change a moment before the run that made it is counted."""
    end = time.monotonic() + timeout
    n, since = len(runs), time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.05)
        if len(runs) != n:
            n, since = len(runs), time.monotonic()
        elif time.monotonic() - since >= quiet:
            return n
    raise AssertionError("the watcher never went quiet")


def paths_in(lib) -> set[str]:  # type: ignore[no-untyped-def]
    return set(lib.store.file_states())


@pytest.fixture
def watched(new_library, tmp_path: Path, photos: Path):  # type: ignore[no-untyped-def]
    folder = tmp_path / "camera"
    folder.mkdir()
    shutil.copyfile(photos / "tent.jpg", folder / "tent.jpg")
    lib = new_library()
    runs = Runs()
    w = Watcher(lib, [folder], debounce=DEBOUNCE, max_wait=10, on_batch=runs).start()
    wait_for(lambda: len(runs) >= 1, what="the catch-up run")
    assert paths_in(lib) == {str(folder / "tent.jpg")}
    yield lib, folder, runs
    w.stop()


def test_new_changed_moved_and_deleted_files(watched, photos: Path) -> None:  # type: ignore[no-untyped-def]
    lib, folder, runs = watched
    shutil.copyfile(photos / "coffee.jpg", folder / "coffee.jpg")
    wait_for(lambda: str(folder / "coffee.jpg") in paths_in(lib), what="a new file")
    coffee = lib.store.get_by_path(str(folder / "coffee.jpg"))
    # edited in place: other bytes under the same name are embedded again
    shutil.copyfile(photos / "guitar.jpg", folder / "coffee.jpg")
    wait_for(lambda: lib.store.get_by_path(str(folder / "coffee.jpg")).sha != coffee.sha, what="an edit")
    assert lib.search(image=photos / "guitar.jpg", limit=1).results[0].path == str(folder / "coffee.jpg")
    # moved into a new subfolder: same record, new path, nothing re-embedded
    before = settled(runs)
    (folder / "2024").mkdir()
    os.rename(folder / "tent.jpg", folder / "2024" / "tent.jpg")
    wait_for(lambda: str(folder / "2024" / "tent.jpg") in paths_in(lib), what="a move")
    assert str(folder / "tent.jpg") not in paths_in(lib)
    settled(runs)
    assert sum(s.moved for s, _ in runs.summaries[before:]) == 1, [(c, s.as_dict()) for s, c in runs.summaries[before:]]
    assert sum(s.indexed for s, _ in runs.summaries[before:]) == 0
    # deleted
    os.remove(folder / "coffee.jpg")
    wait_for(lambda: paths_in(lib) == {str(folder / "2024" / "tent.jpg")}, what="a deletion")
    # not images, hidden files: no index run at all
    n = settled(runs)
    (folder / "notes.txt").write_text("hello")
    shutil.copyfile(photos / "rocket.jpg", folder / ".hidden.jpg")
    time.sleep(DEBOUNCE * 4)
    assert len(runs) == n


def test_a_burst_is_batched(watched, photos: Path) -> None:  # type: ignore[no-untyped-def]
    """A camera import: 300 files in a few seconds' stream become a handful of index runs, not 300."""
    lib, folder, runs = watched
    before = len(runs)
    names = ["chelsea", "coffee", "rocket", "guitar", "puppy", "flower"]
    dcim = folder / "DCIM"
    dcim.mkdir()
    for i in range(300):
        shutil.copyfile(photos / f"{names[i % len(names)]}.jpg", dcim / f"IMG_{i:04d}.jpg")
        if i % 60 == 59:
            time.sleep(0.05)  # the card reader pauses now and then, less than the debounce
    wait_for(lambda: sum(s.indexed + s.reused for s, _ in runs.summaries[before:]) >= 300, timeout=120,
             what="the whole import")
    time.sleep(DEBOUNCE * 3)  # and nothing more to come
    assert len(paths_in(lib)) == 301
    burst = runs.summaries[before:]
    assert 1 <= len(burst) <= 3, [c for _, c in burst]
    assert sum(s.indexed + s.reused for s, _ in burst) == 300


def test_the_folder_removed_and_recreated(watched, photos: Path) -> None:  # type: ignore[no-untyped-def]
    lib, folder, runs = watched
    (folder / "sub").mkdir()
    shutil.copyfile(photos / "coffee.jpg", folder / "sub" / "coffee.jpg")
    wait_for(lambda: str(folder / "sub" / "coffee.jpg") in paths_in(lib), what="a file in a new subfolder")
    shutil.rmtree(folder / "sub")  # a subfolder removed: its images go
    wait_for(lambda: paths_in(lib) == {str(folder / "tent.jpg")}, what="the removed subfolder dropped")
    n = settled(runs)
    shutil.rmtree(folder)  # the watched folder itself: kept (it may be an unplugged drive) ...
    time.sleep(DEBOUNCE * 3)
    assert paths_in(lib) == {str(folder / "tent.jpg")} and len(runs) == n
    folder.mkdir()  # ... until it is back, with what it holds then
    shutil.copyfile(photos / "puppy.jpg", folder / "puppy.jpg")
    wait_for(lambda: paths_in(lib) == {str(folder / "puppy.jpg")}, what="the re-created folder indexed")
    shutil.copyfile(photos / "chelsea.jpg", folder / "chelsea.jpg")  # and it is watched again
    wait_for(lambda: str(folder / "chelsea.jpg") in paths_in(lib), what="a file in the re-created folder")


def test_outermost() -> None:
    assert _outermost({"/a/b", "/a/b/x.jpg", "/a/b c/y.jpg", "/a/bc.jpg"}) == ["/a/b", "/a/b c/y.jpg", "/a/bc.jpg"]


def env_for(library: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC, "LOOKALIKE_LIBRARY": str(library), "LOOKALIKE_WATCH_DEBOUNCE": str(DEBOUNCE)}


def test_watch_command_in_words_names_what_it_skipped(tmp_path: Path, photos: Path) -> None:
    """As `lookalike index` does: one line per file it could not read (it said only "skipped 1")."""
    folder = tmp_path / "pics"
    folder.mkdir()
    shutil.copyfile(photos / "tent.jpg", folder / "tent.jpg")
    (folder / "empty.jpg").touch()
    proc = subprocess.Popen([sys.executable, "-m", "lookalike.cli", "watch", str(folder)],
                            env=env_for(tmp_path / "lib"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "catch-up:" in proc.stdout.readline()  # type: ignore[union-attr]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        err = proc.stderr.read()  # type: ignore[union-attr]
        assert f"skipped {folder / 'empty.jpg'}: empty file (0 bytes)" in err and "Traceback" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_watch_command(tmp_path: Path, photos: Path) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    shutil.copyfile(photos / "tent.jpg", folder / "tent.jpg")
    proc = subprocess.Popen([sys.executable, "-m", "lookalike.cli", "watch", str(folder), "--json"],
                            env=env_for(tmp_path / "lib"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        assert first["changes"] == 0 and first["indexed"] == 1
        shutil.copyfile(photos / "rocket.jpg", folder / "rocket.jpg")
        second = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        assert second["changes"] >= 1 and second["indexed"] == 1
        proc.send_signal(signal.SIGTERM)  # a clean stop
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_watch(tmp_path: Path, photos: Path) -> None:
    pytest.importorskip("uvicorn")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tmp_path / "pics"
    folder.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "lookalike.cli", "serve", "--port", str(port), "--json",
                             "--watch", str(folder)], env=env_for(tmp_path / "lib"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)

    def images() -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stats", timeout=5) as resp:
                return int(json.loads(resp.read())["images"])
        except OSError:
            return -1

    try:
        json.loads(proc.stdout.readline())  # type: ignore[union-attr]  # listening
        wait_for(lambda: images() == 0, what="the server")
        shutil.copyfile(photos / "coffee.jpg", folder / "coffee.jpg")
        wait_for(lambda: images() == 1, what="the new photo in the served library")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read()  # type: ignore[union-attr]  # the watcher stopped cleanly


def test_a_name_that_is_not_utf8_is_reported_once_and_the_rest_indexed(watched, photos: Path,  # type: ignore[no-untyped-def]
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    """Such a name cannot be stored (the crawl skips it too): the watcher says so once and goes on."""
    lib, folder, runs = watched
    caplog.set_level("WARNING", logger="lookalike.watch")
    base = os.fsencode(folder)
    shutil.copyfile(photos / "coffee.jpg", base + b"/bad\xff.jpg")
    os.mkdir(base + b"/trip\xfe")
    for i in range(3):
        shutil.copyfile(photos / "rocket.jpg", base + b"/trip\xfe/img%d.jpg" % i)
    shutil.copyfile(photos / "coffee.jpg", base + b"/bad\xff.jpg")  # written again: not reported again
    shutil.copyfile(photos / "puppy.jpg", folder / "puppy.jpg")
    wait_for(lambda: str(folder / "puppy.jpg") in paths_in(lib), what="the good file")
    settled(runs)
    assert paths_in(lib) == {str(folder / "tent.jpg"), str(folder / "puppy.jpg")}
    said = [r.getMessage() for r in caplog.records if "UTF-8" in r.getMessage()]
    assert sorted(said) == sorted([f"watch: $'{folder}/bad\\xff.jpg': the file name is not valid UTF-8 (rename it "
                                   "to index it); skipped",
                                   f"watch: $'{folder}/trip\\xfe': the folder name is not valid UTF-8 (rename it "
                                   "to index it); skipped"]), said
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    os.remove(base + b"/bad\xff.jpg")  # deleting it is no news either
    shutil.rmtree(base + b"/trip\xfe")
    time.sleep(DEBOUNCE * 3)
    assert len([r for r in caplog.records if "UTF-8" in r.getMessage()]) == 2
