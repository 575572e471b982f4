"""Walking folders: recursion, hidden files, symlink loops, unreadable folders, unicode names."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lookalike.io.crawl import crawl


def _touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    return p


def test_recursive_and_skips(tmp_path: Path) -> None:
    a = _touch(tmp_path / "a.jpg")
    b = _touch(tmp_path / "sub" / "deeper" / "B.JPEG")
    _touch(tmp_path / ".hidden.jpg")
    _touch(tmp_path / "._a.jpg")  # AppleDouble
    _touch(tmp_path / ".git" / "c.jpg")  # hidden folder
    _touch(tmp_path / "notes.txt")
    u = _touch(tmp_path / "ünïcödé 写真" / "猫.png")
    got = {e.path for e in crawl([tmp_path])}
    assert got == {str(a), str(b), str(u)}


def test_a_name_that_is_not_utf8_is_reported_and_the_rest_walked(tmp_path: Path) -> None:
    good = _touch(tmp_path / "good.jpg")
    base = os.fsencode(tmp_path)
    with open(base + b"/bad\xff\xfename.jpg", "wb") as fh:
        fh.write(b"x")
    os.mkdir(base + b"/folder\xff")
    with open(base + b"/folder\xff/inside.jpg", "wb") as fh:
        fh.write(b"x")
    problems: list[tuple[str, str]] = []
    got = [e.path for e in crawl([tmp_path], lambda path, why: problems.append((path, why)))]
    assert got == [str(good)]
    assert len(problems) == 2 and all("not valid UTF-8" in why for _, why in problems)
    assert {os.fsencode(path).rsplit(b"/", 1)[1] for path, _ in problems} == {b"bad\xff\xfename.jpg", b"folder\xff"}


def test_symlink_loop_terminates(tmp_path: Path) -> None:
    a = _touch(tmp_path / "x" / "a.jpg")
    os.symlink(tmp_path, tmp_path / "x" / "loop")
    os.symlink(tmp_path / "x", tmp_path / "again")
    got = [e.path for e in crawl([tmp_path])]
    assert got == [str(a)]


def test_file_roots_and_missing(tmp_path: Path) -> None:
    a = _touch(tmp_path / "a.jpg")
    problems: list[tuple[str, str]] = []
    got = [e.path for e in crawl([a, a, tmp_path / "missing"], on_problem=lambda p, r: problems.append((p, r)))]
    assert got == [str(a)]
    assert problems and "no such file" in problems[0][1]


@pytest.mark.skipif(not shutil.which("setpriv") or os.geteuid() != 0, reason="needs root + setpriv to drop privileges")
def test_unreadable_folder_reported() -> None:
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="lookalike-crawl-", dir="/tmp"))
    root = tmp_path / "lib"
    ok = _touch(root / "ok" / "a.jpg")
    _touch(root / "locked" / "b.jpg")
    os.chmod(root / "locked", 0o000)
    for p in (tmp_path, root, root / "ok"):
        os.chmod(p, 0o755)
    os.chmod(ok, 0o644)
    code = ("import sys; from lookalike.io.crawl import crawl; pr=[]; "
            "f=[e.path for e in crawl([sys.argv[1]], on_problem=lambda p,r: pr.append((p,r)))]; print(f); print(pr)")
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run(["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
                          sys.executable, "-c", code, str(root)], capture_output=True, text=True, env=env, cwd="/")
    os.chmod(root / "locked", 0o755)
    shutil.rmtree(tmp_path)
    assert out.returncode == 0, out.stderr
    files, problems = out.stdout.strip().splitlines()
    assert str(ok) in files and "b.jpg" not in files
    assert "locked" in problems and "cannot read folder" in problems


# -- hardening (issue 12): regular files only, a symlink policy, loops reported ------------------------------
def _problems(roots: list[Path], **kw: object) -> tuple[list[str], dict[str, str]]:
    problems: dict[str, str] = {}
    got = [e.path for e in crawl(roots, on_problem=lambda p, r: problems.__setitem__(p, r), **kw)]  # type: ignore[arg-type]
    return got, problems


def test_fifo_and_device_skipped_with_a_reason(tmp_path: Path) -> None:
    a = _touch(tmp_path / "a.jpg")
    os.mkfifo(tmp_path / "x.jpg")
    os.symlink("/dev/zero", tmp_path / "z.jpg")
    got, problems = _problems([tmp_path], follow_symlinks=True)
    assert got == [str(a)]
    assert "FIFO" in problems[str(tmp_path / "x.jpg")]
    assert "character device" in problems[str(tmp_path / "z.jpg")]
    # named directly on the command line: refused the same way, nothing opened
    got, problems = _problems([tmp_path / "x.jpg"])
    assert got == [] and "FIFO" in problems[str(tmp_path / "x.jpg")]


def test_symlink_loop_between_files_reported(tmp_path: Path) -> None:
    os.symlink(tmp_path / "b.jpg", tmp_path / "a.jpg")
    os.symlink(tmp_path / "a.jpg", tmp_path / "b.jpg")
    os.symlink(tmp_path / "gone.jpg", tmp_path / "c.jpg")
    got, problems = _problems([tmp_path])
    assert got == []
    assert problems[str(tmp_path / "a.jpg")] == problems[str(tmp_path / "b.jpg")] == "symlink loop: not followed"
    assert "broken symlink" in problems[str(tmp_path / "c.jpg")]


def test_symlinks_outside_the_roots_not_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    inner = _touch(root / "real" / "a.jpg")
    secret = _touch(outside / "secret.jpg")
    _touch(outside / "deep" / "key.png")
    os.symlink(secret, root / "leak.jpg")
    os.symlink(outside / "deep", root / "leakdir")
    os.symlink(inner, root / "alias.jpg")  # inside the root: followed, indexed once under its real path
    got, problems = _problems([root])
    assert got == [str(inner)]
    assert "outside the indexed folders" in problems[str(root / "leak.jpg")]
    assert "outside the indexed folders" in problems[str(root / "leakdir")]
    walk = __import__("lookalike.io.crawl", fromlist=["Crawl"]).Crawl([root], follow_symlinks=True)
    got = [e.path for e in walk]
    assert got == [str(inner), str(secret), str(outside / "deep" / "key.png")]
    assert walk.outside == [str(secret), str(outside / "deep")]


def test_entries_carry_device_and_inode(tmp_path: Path) -> None:
    a = _touch(tmp_path / "a.jpg")
    (e,) = crawl([tmp_path])
    st = os.stat(a)
    assert (e.dev, e.ino, e.size) == (st.st_dev, st.st_ino, st.st_size)
