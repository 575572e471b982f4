"""The command line when things go wrong (issue 12): one line, the right exit status, nothing lost.

Exit statuses: 2 usage (bad arguments or input), 1 runtime (disk full, read-only/corrupt library, not a
library, unexpected errors), 130 interrupted. Every case runs the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from lookalike.samples import copy_samples

SRC = str(Path(__file__).resolve().parents[1] / "src")


def cli(*args: str, library: Path | None = None, preexec=None, timeout: int = 300,  # type: ignore[no-untyped-def]
        ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    env.pop("LOOKALIKE_LIBRARY", None)
    if library is not None:
        env["LOOKALIKE_LIBRARY"] = str(library)
    return subprocess.run([sys.executable, "-m", "lookalike.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=preexec)


def one_line(out: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert out.returncode == code, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(("lookalike: error:", "lookalike ")), out.stderr
    for w in words:
        assert w in last, out.stderr


@pytest.mark.parametrize("args", [["search", "cat", "--limit", "0"], ["search", "cat", "--limit", "-3"],
                                  ["search", "cat", "--after", "2021-13-45"],
                                  ["search", "cat", "--before", "2021-01-01xyz"],
                                  ["dupes", "--after", "2021-02-30"], ["dupes", "--neighbours", "0"],
                                  ["search", "cat", "--threshold", "2"], ["search", "cat", "--threshold=-0.5"],
                                  ["search", "cat", "--threshold", "nan"], ["dupes", "--threshold", "1.5"],
                                  ["search", "cat", "--min-size=99999999999999999999999"],
                                  ["dupes", "--neighbours", "99999999999999999999"], ["search", "cat", "--bogus"],
                                  ["index", "--batch-size", "0", "x"], ["bogus"], ["info", "--library", ""],
                                  ["search", "cat", "--db", " "], ["search", "cat", "--read-db", "nonsense"]])
def test_bad_arguments_are_usage_errors(args: list[str], tmp_path: Path) -> None:
    out = cli(*args, library=tmp_path / "lib")
    one_line(out, 2, *(("is empty",) if "" in args or " " in args else ("--db",) if "--read-db" in args
                       else ("--help shows the options",)))
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr  # no usage block before it
    assert not (tmp_path / "lib").exists()


def test_an_error_that_a_ctrl_c_caused_is_an_interruption(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A Ctrl+C inside a C extension's import comes back as ImportError ("initialization failed"): 130."""
    import lookalike.cli as cli_module

    def interrupted_import(args) -> int:  # type: ignore[no-untyped-def]
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            raise ImportError("initialization failed") from None
        return 0

    def register(sub) -> None:  # type: ignore[no-untyped-def]
        sub.add_parser("slowimport")
        cli_module.COMMANDS["slowimport"] = interrupted_import

    monkeypatch.setattr(cli_module, "_EXTENSIONS", [*cli_module._EXTENSIONS, register])
    assert cli_module.main(["slowimport"]) == 130
    assert capsys.readouterr().err.strip() == "lookalike: interrupted"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_crash_reports_hide_passwords_and_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lookalike.errors import mask_secrets, write_report

    url = "postgresql://postgres:Pw0rd99@127.0.0.1:5999/lookalike?password=Other11"
    monkeypatch.setattr(sys, "argv", ["lookalike", "info", "--db", url])
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = write_report(RuntimeError(f"libpq quoted {url} and Pw0rd99"), "info")
    assert path is not None and oct(os.stat(path).st_mode & 0o777) == "0o600"
    text = Path(path).read_text()
    assert "Pw0rd99" not in text and "Other11" not in text and "postgres:***@127.0.0.1" in text
    assert mask_secrets("postgresql:///lookalike?host=/tmp") == "postgresql:///lookalike?host=/tmp"  # as given


def test_an_interrupt_while_the_parser_is_built_is_130(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import lookalike.cli as cli_module

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "build_parser", interrupted)
    assert cli_module.main(["info"]) == 130
    assert capsys.readouterr().err.strip() == "lookalike: interrupted"


def test_a_full_standard_output_is_not_blamed_on_the_library(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    copy_samples(photos, ["coffee"])
    lib = tmp_path / "lib"
    assert cli("index", str(photos), library=lib).returncode == 0
    for args in (["search", "coffee"], ["search", "coffee", "--json"], ["info"]):
        with open("/dev/full", "w") as full:
            env = {**os.environ, "PYTHONPATH": SRC, "LOOKALIKE_LIBRARY": str(lib)}
            out = subprocess.run([sys.executable, "-m", "lookalike.cli", *args], env=env, stdout=full,
                                 stderr=subprocess.PIPE, text=True, timeout=300)
        assert out.returncode == 1 and out.stderr.strip() == "lookalike: error: cannot write the output: No space left on device", out.stderr


@pytest.mark.parametrize("args,said", [(["search", "cat", "--limit", "-3"], "--limit/-n: must be at least 1, not -3"),
                                       (["search", "cat", "-n", "-3"], "--limit/-n: must be at least 1, not -3"),
                                       (["search", "cat", "--threshold", "-0.5"], "not -0.5"),
                                       (["dupes", "--neighbours", "-2"], "not -2")])
def test_a_negative_value_is_read_as_the_value(args: list[str], said: str, tmp_path: Path) -> None:
    """``-0`` (``--null``) makes argparse take ``-3`` for an option: it said "expected one argument"."""
    one_line(cli(*args, library=tmp_path / "lib"), 2, said)


def test_names_that_are_not_utf8_are_skipped_and_the_rest_indexed(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    copy_samples(photos, ["coffee", "chelsea"])
    os.rename(photos / "chelsea.jpg", os.fsencode(photos) + b"/chelsea\xff.jpg")
    out = cli("index", str(photos), library=tmp_path / "lib")
    assert out.returncode == 0 and "Traceback" not in out.stderr
    assert "indexed 1," in out.stdout and "not valid UTF-8" in out.stderr
    raw = subprocess.run([sys.executable, "-m", "lookalike.cli", "index", str(photos), "--json"], capture_output=True,
                         env={**os.environ, "PYTHONPATH": SRC, "LOOKALIKE_LIBRARY": str(tmp_path / "lib")}, timeout=300)
    report = json.loads(raw.stdout.decode("utf-8"))  # valid UTF-8: the name's bad byte as its \udcff escape
    assert [os.fsencode(s["path"]).rsplit(b"/", 1)[1] for s in report["skipped"]] == [b"chelsea\xff.jpg"]
    # such a folder given as the root itself: reported, nothing else happens (it reached the store's queries)
    bad = os.fsdecode(os.fsencode(tmp_path) + b"/trip\xfe")
    os.rename(photos, bad)
    out = cli("index", bad, library=tmp_path / "lib")
    assert out.returncode == 0 and "Traceback" not in out.stderr and "unexpected" not in out.stderr, out.stderr
    assert "indexed 0," in out.stdout and "not valid UTF-8" in out.stderr
    one_line(cli("watch", bad, library=tmp_path / "lib"), 2,
             "cannot watch $'" + str(tmp_path) + "/trip\\xfe': the folder name is not valid UTF-8")


def test_a_symlink_loop_given_as_the_path_is_reported_not_missing(tmp_path: Path) -> None:
    os.symlink("loop.jpg", tmp_path / "loop.jpg")  # it exists, as a link to itself ("does not exist" before)
    out = cli("index", str(tmp_path / "loop.jpg"), library=tmp_path / "lib")
    assert out.returncode == 0 and f"skipped {tmp_path / 'loop.jpg'}: symlink loop" in out.stderr, out.stderr


def test_input_a_store_cannot_bind_is_a_usage_error(tmp_path: Path) -> None:
    """Text that is not UTF-8 and numbers past 64 bits reached SQLite: "unexpected error" (a traceback report)."""
    photos = tmp_path / "photos"
    copy_samples(photos, ["coffee"])
    lib = tmp_path / "lib"
    assert cli("index", str(photos), library=lib).returncode == 0
    bad = os.fsdecode(os.fsencode(str(tmp_path)) + b"/ph\xff")
    for args in (["search", "cat", "--folder", bad], ["search", "cat", "--camera", os.fsdecode(b"ni\xffkon")],
                 ["forget", os.fsdecode(b"bad\xff")], ["teach", os.fsdecode(b"rex\xff"), str(photos / "coffee.jpg")]):
        one_line(cli(*args, library=lib), 2, "not valid UTF-8")
    for args in (["search", "id:99999999999999999999999"], ["search", "cat", "--more-like", "99999999999999999999999"],
                 ["search", "id:\u00b2"], ["teach", "rex", "id:\u0663"]):  # "²", an Arabic-Indic 3
        one_line(cli(*args, library=lib), 2, "not an image id")
    one_line(cli("people", "name", "99999999999999999999999:0", "Bob", library=lib), 2, "too large")


@pytest.mark.parametrize("var,value,said", [("LOOKALIKE_THREADS", "abc", "want a whole number, not 'abc'"),
                                             ("LOOKALIKE_NPROBE", "abc", "want a whole number"),
                                             ("LOOKALIKE_MAX_FILE_MB", "-1", "must be at least 1, not -1"),
                                             ("LOOKALIKE_MAX_PIXELS", "0", "must be at least 1, not 0"),
                                             ("LOOKALIKE_BATCH_SIZE", "-1", "must be at least 0"),
                                             ("LOOKALIKE_WATCH_DEBOUNCE", "inf", "must be a finite number of seconds"),
                                             ("LOOKALIKE_DEVICE", "tpu", "must be cpu, cuda, cuda:N or auto")])
def test_a_bad_environment_variable_is_one_line(var: str, value: str, said: str, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "lookalike.cli", "search", "cat"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": SRC, "LOOKALIKE_LIBRARY": str(tmp_path / "lib"), var: value},
                         timeout=300)
    one_line(out, 2, f"the environment variable {var}: {said}")


def test_eval_of_a_file_says_so(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    copy_samples(photos, ["coffee"])
    one_line(cli("eval", str(photos / "coffee.jpg")), 2, "is a file, not a folder of photos")  # said "not found"


def test_flags_that_would_be_ignored_are_usage_errors(tmp_path: Path) -> None:
    for args, said in ((["search", "cat", "-0"], "-0/--null goes with --paths"),
                       (["dupes", "--null"], "-0/--null goes with --paths"),
                       (["dupes", "--yes"], "--yes goes with --delete")):
        one_line(cli(*args, library=tmp_path / "lib"), 2, said)


def test_a_device_that_is_none_is_a_usage_error(tmp_path: Path) -> None:
    one_line(cli("search", "cat", "--device", "tpu", library=tmp_path / "lib"), 2, "must be cpu, cuda, cuda:N or auto")


def test_a_fifo_as_the_query_image_is_one_line(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    copy_samples(photos, ["coffee"])
    lib = tmp_path / "lib"
    assert cli("index", str(photos), library=lib).returncode == 0
    os.mkfifo(tmp_path / "pipe.jpg")
    for args in (["search", str(tmp_path / "pipe.jpg")], ["search", "--image", str(tmp_path / "pipe.jpg"), "cat"]):
        one_line(cli(*args, library=lib), 2, "not a regular file: a FIFO")
    out = cli("search", "the of", library=lib)  # nothing to search: said so, not a bare "no results"
    assert out.returncode == 0 and "no results (the query has only common words" in out.stdout


@pytest.mark.parametrize("command", [["search", "cat"], ["info"], ["dupes"]])
def test_a_missing_library_is_not_created(command: list[str], tmp_path: Path) -> None:
    typo = tmp_path / "typo" / "path"
    out = cli(*command, "--library", str(typo))
    one_line(out, 2, "no lookalike library at", str(typo))
    assert not typo.exists() and not typo.parent.exists()


def test_index_of_only_missing_paths_is_an_error(tmp_path: Path) -> None:
    out = cli("index", str(tmp_path / "nonexistent"), library=tmp_path / "lib")
    one_line(out, 2, "nothing to index", "does not exist")
    assert not (tmp_path / "lib").exists()


def test_a_folder_that_is_not_a_library(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    copy_samples(photos, ["coffee"])
    out = cli("index", str(photos), "--library", str(photos))
    one_line(out, 1, "is not a lookalike library")
    assert sorted(p.name for p in photos.iterdir()) == ["coffee.jpg"]  # nothing written among the photos
    (tmp_path / "file").write_text("x")
    one_line(cli("info", "--library", str(tmp_path / "file")), 1, "is a file, not a library folder")


def test_a_corrupt_database(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "lookalike.db").write_bytes(os.urandom(8192))
    one_line(cli("info", library=lib), 1, "lookalike.db", "not a lookalike database")
    (lib / "lookalike.db").write_bytes(b"SQLite format 3\x00" + os.urandom(8192))  # the header, then garbage
    one_line(cli("search", "cat", library=lib), 1, "is corrupt")



def test_a_0_byte_database_is_no_library_until_indexed(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "lookalike.db").touch()
    for args in (["info"], ["search", "cat"]):  # reading commands: nothing written into it
        one_line(cli(*args, library=lib), 2, "no lookalike library at", str(lib))
        assert (lib / "lookalike.db").stat().st_size == 0
    photos = tmp_path / "photos"
    copy_samples(photos, ["coffee"])
    assert cli("index", str(photos), library=lib).returncode == 0  # index makes it one
    assert cli("info", library=lib).returncode == 0


def _file_size_limit(limit: int):  # type: ignore[no-untyped-def]
    def pre() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail (EFBIG) as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return pre


def test_disk_full_during_indexing_is_one_line_and_resumes(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    copy_samples(photos, ["chelsea", "coffee", "astronaut", "rocket", "black_cat", "puppy"])
    lib = tmp_path / "lib"
    args = ("index", str(photos), "--engine", "torch", "--batch-size", "2", "--quiet", "--json")
    # a budget that the new library (schema, first batches) exceeds part-way: some batches committed, not all
    out = cli(*args, library=lib, preexec=_file_size_limit(400_000))
    one_line(out, 1, str(lib), "run the command again")
    done = cli(*args, library=lib)  # the space is back: it resumes from what was committed
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["unchanged"] >= 2 and summary["unchanged"] + summary["indexed"] == 6
    info = json.loads(cli("info", "--json", library=lib).stdout)
    assert info["images"] == info["vectors"] == 6


@pytest.mark.skipif(not shutil.which("setpriv") or os.geteuid() != 0, reason="needs root + setpriv to drop privileges")
def test_a_read_only_library(tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="lookalike-ro-", dir="/tmp"))
    try:
        photos, lib = base / "photos", base / "lib"
        copy_samples(photos, ["coffee"])
        assert cli("index", str(photos), "--engine", "torch", "--quiet", library=lib).returncode == 0
        for p in [base, photos, lib, *photos.iterdir(), *lib.iterdir()]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)  # readable by everyone, writable by root only
        copy_samples(photos, ["rocket"])
        os.chmod(photos / "rocket.jpg", 0o644)
        before = [p.name for p in lib.iterdir()]

        def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
            env = {**os.environ, "PYTHONPATH": SRC, "LOOKALIKE_LIBRARY": str(lib), "HOME": str(base)}
            return subprocess.run(["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
                                   sys.executable, "-m", "lookalike.cli", *args], env=env, capture_output=True,
                                  text=True, timeout=300, cwd="/")

        one_line(as_nobody("index", str(photos), "--engine", "torch", "--quiet"), 1, str(lib), "read-only")
        # reading needs no writing: searches and info work on a library this user cannot write
        found = as_nobody("search", str(photos / "coffee.jpg"), "--json", "-n", "1", "--engine", "torch")
        assert found.returncode == 0, found.stderr
        assert Path(json.loads(found.stdout)["results"][0]["path"]).name == "coffee.jpg"
        assert json.loads(as_nobody("info", "--json").stdout)["images"] == 1
        assert as_nobody("search", "coffee", "-q").returncode == 0
        assert sorted(p.name for p in lib.iterdir()) == sorted(before)  # nothing was written there
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_unexpected_errors_are_one_line_with_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from lookalike import cli as cli_module

    def boom(args) -> int:  # type: ignore[no-untyped-def]
        return {}["no such key"]  # a real bug: KeyError

    def register(sub) -> None:  # type: ignore[no-untyped-def]
        sub.add_parser("boom")
        cli_module.COMMANDS["boom"] = boom

    monkeypatch.setattr(cli_module, "_EXTENSIONS", [*cli_module._EXTENSIONS, register])
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert cli_module.main(["boom"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected error: KeyError" in err and "Traceback" not in err
    report = Path(err.split("the full report is in ")[1].split(";")[0])
    assert "Traceback" in report.read_text() and "no such key" in report.read_text()
    assert cli_module.main(["boom", "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_names_with_newlines_are_quoted(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    copy_samples(photos, ["chelsea", "coffee"])
    odd = photos / "two\nlines.jpg"
    (photos / "chelsea.jpg").rename(odd)
    lib = tmp_path / "lib"
    assert cli("index", str(photos), "--quiet", library=lib).returncode == 0
    out = cli("search", str(photos / "coffee.jpg"), "--limit", "2", library=lib)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2  # one line per result
    assert any("$'" + str(photos) + "/two\\nlines.jpg'" in line for line in lines)
    d = json.loads(cli("search", str(photos / "coffee.jpg"), "--json", library=lib).stdout)
    assert str(odd) in {r["path"] for r in d["results"]}  # JSON keeps the real name
