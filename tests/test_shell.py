"""Command-line conventions (lookalike/shell.py): shared flags on every command, help with examples and the
environment, completion scripts run by the real shells, --paths output, and the safety of dupes' actions
(--delete confirmed, --trash / --move-to undone by `lookalike undo`) on a real indexed library."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lookalike.cli import build_parser, main
from lookalike.config import ENV_VARS
from lookalike.shell import ENV_HELP, path_line

SRC = str(Path(__file__).resolve().parents[1] / "src")


def subcommands() -> dict[str, object]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return dict(sub.choices)  # type: ignore[attr-defined]


def options(p) -> set[str]:  # type: ignore[no-untyped-def]
    return {s for a in p._actions for s in a.option_strings}


def test_every_command_has_verbosity_flags() -> None:
    cmds = subcommands()
    assert {"index", "search", "dupes", "undo", "serve", "info", "describe", "completion"} <= set(cmds)
    for name, p in cmds.items():
        assert {"-v", "--verbose", "--debug", "-q", "--quiet"} <= options(p), name


def test_options_that_mean_nothing_are_not_offered() -> None:
    cmds = subcommands()
    assert "--read-db" not in options(cmds["describe"]) and "--model" not in options(cmds["describe"])
    assert "--model" not in options(cmds["dupes"]) and "--read-db" not in options(cmds["dupes"])
    assert "--read-db" in options(cmds["search"]) and "--model" in options(cmds["search"])


def test_help_has_examples_and_environment(capsys: pytest.CaptureFixture[str]) -> None:
    assert set(ENV_VARS) == set(ENV_HELP)  # every variable config.py reads is described
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "lookalike search cat" in out and "LOOKALIKE_LIBRARY" in out
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for var in ENV_VARS:
        assert var in out


def completion(shell: str) -> str:
    out = subprocess.run([sys.executable, "-m", "lookalike.cli", "completion", shell], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": SRC}, timeout=120, check=True)
    return out.stdout


@pytest.mark.skipif(not shutil.which("bash"), reason="bash is not installed")
def test_bash_completion(tmp_path: Path) -> None:
    script = tmp_path / "lookalike.bash"
    script.write_text(completion("bash"))
    (tmp_path / "pics").mkdir()
    probe = f"""source {script}
cd {tmp_path}
COMP_WORDS=(lookalike se); COMP_CWORD=1; _shtab_lookalike; echo "A:${{COMPREPLY[*]}}"
COMP_WORDS=(lookalike dupes --tr); COMP_CWORD=2; _shtab_lookalike; echo "B:${{COMPREPLY[*]}}"
COMP_WORDS=(lookalike dupes --method ""); COMP_CWORD=3; _shtab_lookalike; echo "C:${{COMPREPLY[*]}}"
COMP_WORDS=(lookalike index pi); COMP_CWORD=2; _shtab_lookalike; echo "D:${{COMPREPLY[*]}}"
"""
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=60).stdout
    assert "A:search serve" in out
    assert "B:--trash" in out
    assert "C:verified embedding phash" in out
    assert "D:pics" in out


@pytest.mark.skipif(not shutil.which("fish"), reason="fish is not installed")
def test_fish_completion(tmp_path: Path) -> None:
    script = tmp_path / "lookalike.fish"
    script.write_text(completion("fish"))
    out = subprocess.run(["fish", "-c", f"source {script}; complete -C 'lookalike dup'; complete -C 'lookalike dupes --tr'"],
                         capture_output=True, text=True, timeout=60).stdout
    assert out.startswith("dupes\t") and "--trash\t" in out


@pytest.mark.skipif(not shutil.which("zsh"), reason="zsh is not installed")
def test_zsh_completion(tmp_path: Path) -> None:
    (tmp_path / "_lookalike").write_text(completion("zsh"))
    out = subprocess.run(["zsh", "-c", f"fpath=({tmp_path} $fpath); autoload -U compinit; compinit -u -d "
                                       f"{tmp_path}/dump; autoload -U _lookalike; whence -w _lookalike; "
                                       f"zsh -n {tmp_path}/_lookalike && echo parsed"],
                         capture_output=True, text=True, timeout=60)
    assert "_lookalike: function" in out.stdout and "parsed" in out.stdout, out.stderr


def test_path_line_keeps_one_path_per_line() -> None:
    assert path_line("/a/b c.jpg") == "/a/b c.jpg"
    assert path_line("/a/two\nlines.jpg") == "$'/a/two\\nlines.jpg'"
    assert path_line("/a/it's\t.jpg") == "$'/a/it\\'s\\t.jpg'"
    # bash reads the quoted form back as the same name
    out = subprocess.run(["bash", "-c", f"printf %s {path_line('/a/two' + chr(10) + 'lines.jpg')}"],
                         capture_output=True, text=True, timeout=30).stdout
    assert out == "/a/two\nlines.jpg"


# -- on a real library ------------------------------------------------------------------------------------------
@pytest.fixture
def dupes_lib(tmp_path: Path, photos: Path, model):  # type: ignore[no-untyped-def]
    folder = tmp_path / "pics"
    folder.mkdir()
    for name in ("coffee.jpg", "guitar.jpg", "rocket.jpg"):
        shutil.copyfile(photos / name, folder / name)
    shutil.copyfile(photos / "coffee.jpg", folder / "coffee copy.jpg")
    shutil.copyfile(photos / "guitar.jpg", folder / "guitar\nnewline.jpg")
    lib = tmp_path / "lib"
    assert main(["index", "--library", str(lib), "-q", "--json", str(folder)]) == 0
    return folder, lib


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_paths_output(dupes_lib, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    folder, lib = dupes_lib
    rc, out, _ = run(capsys, "search", "--library", str(lib), str(folder / "rocket.jpg"), "-n", "2", "--paths")
    assert rc == 0 and out.splitlines()[0] == str(folder / "rocket.jpg") and len(out.splitlines()) == 2
    rc, out, _ = run(capsys, "dupes", "--library", str(lib), "--paths", "-q")
    assert sorted(out.splitlines()) == sorted([str(folder / "coffee copy.jpg"),
                                               path_line(str(folder / "guitar\nnewline.jpg"))])
    rc, out, _ = run(capsys, "dupes", "--library", str(lib), "--paths", "-0")
    assert sorted(out.split("\0")[:-1]) == sorted([str(folder / "coffee copy.jpg"), str(folder / "guitar\nnewline.jpg")])


def test_delete_needs_confirmation(dupes_lib, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    folder, lib = dupes_lib
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    rc, out, err = run(capsys, "dupes", "--library", str(lib), "--delete")
    assert rc == 2 and "--yes" in err and err.count("\n") == 1
    assert (folder / "coffee copy.jpg").exists()
    rc, out, err = run(capsys, "dupes", "--library", str(lib), "--delete", "--yes", "--json")
    assert rc == 0 and not (folder / "coffee copy.jpg").exists() and (folder / "coffee.jpg").exists()
    assert {a["done"] for a in json.loads(out)["actions"]} == {"deleted"}


def test_trash_and_undo(dupes_lib, capsys, private_trash: Path) -> None:  # type: ignore[no-untyped-def]
    folder, lib = dupes_lib
    rc, out, err = run(capsys, "dupes", "--library", str(lib), "--trash")
    assert rc == 0 and "undo with: lookalike undo" in err
    assert sorted(p.name for p in folder.iterdir()) == ["coffee.jpg", "guitar.jpg", "rocket.jpg"]
    trashed = sorted(p.name for p in (private_trash / "files").iterdir())
    assert trashed == ["coffee copy.jpg", "guitar\nnewline.jpg"]
    rc, out, _ = run(capsys, "info", "--library", str(lib), "--json")
    assert json.loads(out)["images"] == 3  # dropped from the index too
    rc, out, _ = run(capsys, "undo", "--library", str(lib), "--list")
    assert "trash" in out and "2 files" in out
    rc, out, _ = run(capsys, "undo", "--library", str(lib))
    assert rc == 0 and out.count("restored") == 2
    assert (folder / "coffee copy.jpg").read_bytes() == (folder / "coffee.jpg").read_bytes()
    assert not list((private_trash / "files").iterdir())
    assert not list((private_trash / "info").iterdir())
    rc, out, _ = run(capsys, "info", "--library", str(lib), "--json")
    assert json.loads(out)["images"] == 5  # indexed again
    rc, out, err = run(capsys, "undo", "--library", str(lib))
    assert rc == 2 and "nothing to undo" in err


def test_a_move_to_that_is_not_a_folder_moves_nothing(dupes_lib, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder, lib = dupes_lib
    before = sorted(p.name for p in folder.iterdir())
    (tmp_path / "afile").write_text("x")
    for target in (tmp_path / "afile", Path("/proc/no/such/folder")):
        rc, _, err = run(capsys, "dupes", "--library", str(lib), "--move-to", str(target))
        assert rc == 2 and "nothing was moved" in err.strip().splitlines()[-1] and "Traceback" not in err
        assert "undo with" not in err
    assert sorted(p.name for p in folder.iterdir()) == before


def test_move_to_quarantine_and_undo(dupes_lib, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder, lib = dupes_lib
    q = tmp_path / "quarantine"
    rc, out, _ = run(capsys, "dupes", "--library", str(lib), "--move-to", str(q), "--json")
    assert rc == 0 and len(list(q.iterdir())) == 2
    (folder / "coffee copy.jpg").write_bytes(b"a new file took the name")
    rc, out, _ = run(capsys, "undo", "--library", str(lib), "--json")
    files = {Path(f["path"]).name: f["done"] for f in json.loads(out)["files"]}
    assert files == {"coffee copy.jpg": "left alone: a file is there now", "guitar\nnewline.jpg": "restored"}
    assert (folder / "coffee copy.jpg").read_bytes() == b"a new file took the name"


def test_json_text_is_valid_utf8_for_names_that_are_not() -> None:
    import json

    from lookalike.shell import json_text

    name = os.fsdecode(b"/photos/caf\xe9 \xff.jpg")  # Latin-1 bytes: held as lone surrogates
    text = json_text({"path": name, "word": "café"})
    assert "café" in text and json.loads(text.encode("utf-8").decode("utf-8"))["path"] == name
