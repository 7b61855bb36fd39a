"""A real `pilothouse` server app with the Studio on 127.0.0.1 (its lifespan on, in a
thread), and headless Chromium (Debian's, driven by Playwright) to use it as a person
would. Screenshots go to $PILOTHOUSE_STUDIO_SCREENSHOTS (default
.cache/studio-screenshots/ in the checkout).

Without /usr/bin/chromium or the playwright package the browser tests skip, unless
PILOTHOUSE_REQUIRE_BROWSER=1 (CI sets it; `make test` installs Debian's chromium when
it runs as root), which makes them fail instead."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from pilothouse.testing.loopback import running_server

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _missing(reason: str) -> None:
    if os.environ.get("PILOTHOUSE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (PILOTHOUSE_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@dataclass
class Running:
    url: str
    server: uvicorn.Server

    def drop_connections(self) -> int:
        """Cut every open connection at the TCP level (RST), as a server that went away
        does to a client mid-answer; the server itself goes on."""
        loop: asyncio.AbstractEventLoop = self.server.servers[0].get_loop()
        connections = list(self.server.server_state.connections)
        for connection in connections:
            transport = getattr(connection, "transport", None)
            if transport is not None:
                loop.call_soon_threadsafe(transport.abort)
        return len(connections)


@contextmanager
def running(app: Any) -> Iterator[Running]:
    """Serve `app` with its lifespan on a free loopback port, in a thread."""
    with running_server(app, lifespan="on", start_timeout_s=120) as (url, server):
        yield Running(url, server)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        _missing("no chromium on this machine: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[dev]')")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1366, "height": 768},  # a laptop screen
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = Path(
        os.environ.get("PILOTHOUSE_STUDIO_SCREENSHOTS") or ROOT / ".cache/studio-screenshots"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder
