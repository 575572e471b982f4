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
