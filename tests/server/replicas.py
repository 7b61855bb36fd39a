"""Several real `pilothouse serve` processes on one PostgreSQL database, behind the nginx
of examples/deployment/nginx.conf, all on loopback: the deployment of
docs/deployment.md, for tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from pilothouse.config import DATABASE_URL_ENV
from pilothouse.testing.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
NGINX_EXAMPLE = ROOT / "examples" / "deployment" / "nginx.conf"
REQUIRE_NGINX_ENV = "PILOTHOUSE_REQUIRE_NGINX"


class Replica:
    """One `pilothouse serve` process with its own data directory."""

    def __init__(self, home: Path, args: Sequence[str], env: dict[str, str]) -> None:
        self.home = home
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = home / "serve.log"
        home.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pilothouse", "serve", *args, "--port", str(self.port)],
                env={**os.environ, "PILOTHOUSE_HOME": str(home), **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def wait_ready(self, seconds: float = 600) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"replica on {self.port} exited: {self.output()}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"replica on {self.port} not ready in {seconds:g} s: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Balancer:
    """nginx running examples/deployment/nginx.conf, its ports replaced by free ones."""

    def __init__(self, folder: Path, replicas: Sequence[Replica]) -> None:
        nginx = shutil.which("nginx") or (
            "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
        )
        if nginx is None:
            reason = "nginx is not installed (apt-get install nginx-light; `make test` does)"
            if os.environ.get(REQUIRE_NGINX_ENV) == "1":
                pytest.fail(f"{REQUIRE_NGINX_ENV}=1 but {reason}")
            pytest.skip(reason)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)  # workers run as nobody under root and write scratch files here
        text = NGINX_EXAMPLE.read_text()
        servers = [line for line in text.splitlines() if line.strip().startswith("server 127.")]
        assert len(servers) == 2, "the example names two replicas"
        for line, replica in zip(servers, replicas, strict=False):
            text = text.replace(line, line.replace(line.split()[1], f"127.0.0.1:{replica.port}"))
        extra = "".join(
            f"        server 127.0.0.1:{r.port} max_fails=1 fail_timeout=5s;\n"
            for r in replicas[2:]
        )
        text = text.replace("        keepalive 32;", extra + "        keepalive 32;")
        text = text.replace("listen 127.0.0.1:8642;", f"listen 127.0.0.1:{self.port};")
        self.config = folder / "nginx.conf"
        self.config.write_text(text)
        self.log = folder / "nginx.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [nginx, "-p", str(folder), "-c", str(self.config), "-e", str(self.log)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.log.read_text(errors='replace')}")
            try:
                httpx.get(f"{self.base}/healthz", timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_replicas(
    root: Path, count: int, args: Sequence[str], database_url: str, env: dict[str, str]
) -> list[Replica]:
    """`count` replicas on `database_url`, each with its own data directory under `root`
    holding a copy of `root/config.toml` (when there is one)."""
    replicas = []
    for n in range(count):
        home = root / f"replica-{n + 1}"
        home.mkdir(parents=True, exist_ok=True)
        if (root / "config.toml").is_file():
            shutil.copy(root / "config.toml", home / "config.toml")
        replicas.append(Replica(home, args, {DATABASE_URL_ENV: database_url, **env}))
    try:
        for replica in replicas:
            replica.wait_ready()
    except BaseException:
        for replica in replicas:
            replica.stop()
        raise
    return replicas
