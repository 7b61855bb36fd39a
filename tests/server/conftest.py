from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from pilothouse.config import Settings
from pilothouse.server.app import create_app
from pilothouse.server.connections import ConnectionLimits, uvicorn_config
from pilothouse.server.keys import KeyStore
from pilothouse.server.ops import GracefulServer
from pilothouse.testing.loopback import run_in_thread

ADMIN_KEY_NAME = "test-admin"
COPILOT_NAME = "testdesk"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_sources(home=tmp_path / "home", environ={})


@contextmanager
def running(
    app: Any, *, grace: int | None = None, limits: ConnectionLimits | None = None
) -> Iterator[tuple[str, uvicorn.Server]]:
    """Serve `app` (lifespan on) on a free loopback port in a thread, with the HTTP
    protocol and connection limits `pilothouse serve` uses."""
    config = uvicorn_config(
        app,
        limits=limits or ConnectionLimits(),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        loop="asyncio",
        access_log=False,
        timeout_graceful_shutdown=grace,
    )
    context = getattr(app, "context", None)
    server = GracefulServer(config, context) if context is not None else uvicorn.Server(config)
    with run_in_thread(server, start_timeout_s=30, stop_timeout_s=15) as served:
        yield served


@pytest.fixture
def keys(settings: Settings) -> Iterator[KeyStore]:
    store = KeyStore(settings.database_path)
    yield store
    store.close()


def make_key(store: KeyStore, *scopes: str, rate: int | None = None, name: str = "") -> str:
    key, _ = store.create(name or "-".join(scopes), list(scopes), rate_per_min=rate)
    return key


TOOLS_PY = '''
from pilothouse.tools import tool

CREATED = []


@tool(read_only=True)
def lookup(term: str) -> str:
    """Look a term up in the asset register.

    Args:
        term: what to look up
    """
    return f"{term}: asset found"


@tool(requires_approval=True)
def create_ticket(summary: str) -> str:
    """Open a helpdesk ticket.

    Args:
        summary: one line saying what is wrong
    """
    CREATED.append(summary)
    return f"HD-{1000 + len(CREATED)} created"
'''

DEFINITION = """\
name: testdesk
instructions: You are the test helpdesk. Cite passages as [n].
model:
  primary: local:qwen2.5-coder-0.5b
knowledge:
  sources: [knowledge]
  retrieval: {mode: hybrid, top_k: 2}
tools:
  - python: tools.py
    functions: [lookup, create_ticket]
limits: {max_tool_steps: 3, max_output_tokens: 100}
memory: {window: 8, summarize: false}
"""


@pytest.fixture
def copilot_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "testdesk"
    (folder / "knowledge").mkdir(parents=True)
    (folder / "knowledge/vpn.md").write_text(
        "# Remote access\n\n## VPN\n\nThe VPN client is WireGuard. Connect to vpn.testcorp.example "
        "on port 51820.\n\n## Printing\n\nPrinters are on floor 3 next to the kitchen.\n"
    )
    (folder / "tools.py").write_text(TOOLS_PY)
    (folder / "copilot.yaml").write_text(DEFINITION)
    return folder


@pytest.fixture
def serve(copilot_dir: Path, settings: Settings) -> Iterator[Any]:
    """serve(*models, scopes=...) -> (base_url, key): a server for the `copilot_dir`
    copilot on `models`, with a key of `scopes`; one server per call, all stopped after
    the test."""
    stack: list[Any] = []

    def start(*models: Any, scopes: tuple[str, ...] = (f"chat:{COPILOT_NAME}",)) -> tuple[str, str]:
        store = KeyStore(settings.database_path)
        key = make_key(store, *scopes)
        app = create_app(
            settings,
            copilots=[copilot_dir],
            keys=store,
            copilot_models={COPILOT_NAME: list(models)},
        )
        ctx = running(app)
        base, _ = ctx.__enter__()
        stack.append((ctx, store))
        return base, key

    yield start
    for ctx, store in stack:
        ctx.__exit__(None, None, None)
        store.close()
