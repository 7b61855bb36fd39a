"""`pilothouse serve PATH` as the README has a newcomer type it: on a loopback address
with no API key yet, it creates an admin key and prints it once; the key works; the
next start creates none; any other address still refuses to start without a key."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pilothouse.testing.ports import free_port
from tests.cli.conftest import Run


def _serve(home: Path, *args: str) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    environ.update({"PILOTHOUSE_HOME": str(home), "COLUMNS": "200"})
    return subprocess.Popen(
        [sys.executable, "-m", "pilothouse", "serve", *args],
        env=environ,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_ready(url: str, process: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited {process.returncode}: {process.stderr.read()}")  # type: ignore[union-attr]
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("serve did not start")


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.terminate()
    out, err = process.communicate(timeout=60)
    return out, err


def test_the_first_start_prints_a_working_key_once(cli: Run, home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    assert cli("init", "shop", "--folder", str(folder)).returncode == 0
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first = _serve(home, str(folder), "--port", str(port))
    try:
        _wait_ready(url, first)
        time.sleep(0.5)  # the key line is written right after the address line
    finally:
        out, err = _stop(first)
    key = out.strip().splitlines()[-1]
    assert "created an admin key" in err and key.startswith("ph-"), (out, err)
    assert "indexing shop's knowledge (2 files" in err  # the first start says why it takes long
    keys = cli("keys", "list", "--json")
    assert '"first-start"' in keys.stdout and key not in keys.stdout

    second = _serve(home, str(folder), "--port", str(port))
    try:
        _wait_ready(url, second)
        models = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert models.status_code == 200, models.text
        assert "shop" in [m["id"] for m in models.json()["data"]]
        assert httpx.get(f"{url}/v1/models").status_code == 401
    finally:
        out, err = _stop(second)
    assert "created an admin key" not in err and out.strip() == ""
    assert "indexing" not in err  # nothing changed since


def test_a_public_address_without_keys_still_refuses(cli: Run, home: Path) -> None:
    result = cli("serve", "--host", "0.0.0.0", "--port", str(free_port()))
    assert result.returncode == 2
    assert "no API keys exist" in result.stderr
    assert '"first-start"' not in cli("keys", "list", "--json").stdout
