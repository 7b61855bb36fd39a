"""The tests' throwaway PostgreSQL leaves nothing behind when the test process is
killed: its server stops with the process that started it, and the folder it leaves is
removed by the next start once it is stale."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from pilothouse.testing.postgres import (
    FOLDER_PREFIX,
    STALE_AFTER_S,
    ThrowawayPostgres,
    remove_stale_folders,
)

START_AND_WAIT = """
import sys, time
from pilothouse.testing.postgres import ThrowawayPostgres
server = ThrowawayPostgres()
server.start()
print(server.process.pid, server.folder, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux's setpriv")
def test_a_server_stops_when_the_process_that_started_it_is_killed(
    postgres_server: ThrowawayPostgres,
) -> None:
    del postgres_server  # only here to skip (or fail) where no PostgreSQL is found
    child = subprocess.Popen(
        [sys.executable, "-c", START_AND_WAIT], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    pid_text, folder = child.stdout.readline().split()
    server_pid = int(pid_text)
    try:
        assert _alive(server_pid)
        child.send_signal(signal.SIGKILL)  # no `close`, no atexit: only the kernel acts
        child.wait()
        for _ in range(600):
            if not _alive(server_pid):
                break
            time.sleep(0.1)
        assert not _alive(server_pid), "the server outlived the process that started it"
    finally:
        if _alive(server_pid):
            os.kill(server_pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)


def test_only_stale_folders_of_dead_servers_are_removed(tmp_path: Path) -> None:
    old = time.time() - STALE_AFTER_S - 60
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    folders = {}
    for name, pid in (("killed", dead), ("running", str(os.getpid())), ("stopped", None)):
        folder = tmp_path / f"{FOLDER_PREFIX}{name}"
        (folder / "data").mkdir(parents=True)
        (folder / "server.log").write_text("log\n")
        if pid is not None:
            (folder / "data" / "postmaster.pid").write_text(f"{pid}\n/data\n")
        os.utime(folder / "server.log", (old, old))
        os.utime(folder, (old, old))
        folders[name] = folder
    fresh = tmp_path / f"{FOLDER_PREFIX}fresh"  # a server being set up: no pid file yet
    (fresh / "data").mkdir(parents=True)
    other = tmp_path / "someone-else"
    other.mkdir()
    os.utime(other, (old, old))

    removed = remove_stale_folders(tmp_path)

    assert sorted(removed) == sorted([folders["killed"], folders["stopped"]])
    assert folders["running"].is_dir() and fresh.is_dir() and other.is_dir()


def test_a_port_taken_before_the_first_start_is_given_up_for_another(
    postgres_server: ThrowawayPostgres,
) -> None:
    """The port is chosen when the server is made and taken when it starts, after
    initdb: in between another process (a parallel test worker) may bind it."""
    del postgres_server  # only here to skip (or fail) where no PostgreSQL is found
    server = ThrowawayPostgres()
    chosen = server.port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", chosen))
        squatter.listen()
        try:
            server.start()
            assert server.port != chosen
            url = server.database("t1")
            with psycopg.connect(url, autocommit=True) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            server.close()
