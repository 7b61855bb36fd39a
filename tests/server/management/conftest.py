"""An app from the server's `create_app`, an admin key and a chat-only key, and a
copilot folder (the one of tests/copilot) to serve, upload and change."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.models.base import Model
from pilothouse.server.app import create_app
from pilothouse.server.keys import KeyStore
from pilothouse.server.management.state import ManagementState, management
from tests.copilot.conftest import DEFINITION, TOOLS

INSTRUCTIONS = (
    "---\nname: testdesk\n---\nsystem:\nYou are the test helpdesk. Cite passages as [n].\n"
)
VPN = (
    "# Remote access\n\n## VPN\n\nThe VPN client is WireGuard. Connect to vpn.testcorp.example "
    "on port 51820. Ask the service desk for a profile.\n\n"
    "## Printing\n\nPrinters are on floor 3 next to the kitchen. The model is a Xerox C8155.\n"
)


def copilot_files(name: str = "testdesk", **replace: str) -> dict[str, str]:
    """The files of a copilot folder, by relative path."""
    files = {
        "copilot.yaml": DEFINITION.replace("name: testdesk", f"name: {name}"),
        "prompts/instructions.prompty": INSTRUCTIONS,
        "knowledge/vpn.md": VPN,
        "tools.py": TOOLS,
    }
    files.update(replace)
    return files


def write_folder(folder: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def zip_bytes(files: dict[str, str | bytes], *, top: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for relative, content in files.items():
            zf.writestr(top + relative, content)
    return buffer.getvalue()


def as_multipart(files: dict[str, str | bytes], field: str = "files") -> list[tuple[str, Any]]:
    return [(field, (relative, content)) for relative, content in files.items()]


@dataclass
class Server:
    client: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    chat_client: httpx.AsyncClient
    settings: Settings
    app: Any

    @property
    def home(self) -> Path:
        return self.settings.home

    def management(self) -> ManagementState:
        """The management API's state in this app (to set small limits)."""
        return management(Request({"type": "http", "app": self.app, "headers": []}))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    home = tmp_path / "home"
    home.mkdir()
    return Settings.from_sources(home=home, environ={})


@pytest.fixture
def copilot_dir(tmp_path: Path) -> Path:
    """A copilot folder outside the data directory (served, not managed)."""
    return write_folder(tmp_path / "testdesk", copilot_files())


@pytest.fixture
def keys(settings: Settings) -> Iterator[tuple[KeyStore, str, str]]:
    store = KeyStore(settings.database_path)
    admin, _ = store.create("admin", ["admin"])
    chat, _ = store.create("chat", ["chat:*", "models"])
    yield store, admin, chat
    store.close()


ServeFactory = Callable[..., Any]


@pytest.fixture
async def serve(settings: Settings, keys: tuple[KeyStore, str, str]) -> AsyncIterator[ServeFactory]:
    """`await serve(copilots=[...])` runs the app's lifespan and gives clients (admin,
    no key, chat-only key). Uploaded copilots may bring code (the test copilot has
    tools.py) unless `allow_code_upload=False` is passed (test_upload_code.py)."""
    stack: list[Any] = []
    store, admin, chat = keys

    async def start(copilots: list[Any] | None = None, **options: Any) -> Server:
        options.setdefault("allow_code_upload", True)
        app = create_app(settings, copilots=copilots or [], keys=store, **options)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        stack.append(lifespan)
        transport = httpx.ASGITransport(app=app)
        base = "http://testserver"
        clients = [
            httpx.AsyncClient(transport=transport, base_url=base, headers=headers, timeout=60)
            for headers in (
                {"Authorization": f"Bearer {admin}"},
                {},
                {"Authorization": f"Bearer {chat}"},
            )
        ]
        stack.extend(clients)
        return Server(*clients, settings=settings, app=app)

    yield start
    for item in reversed(stack):
        if isinstance(item, httpx.AsyncClient):
            await item.aclose()
        else:
            await item.__aexit__(None, None, None)


async def open_copilot(folder: Path, settings: Settings, *models: Model) -> Copilot:
    return await Copilot.open(folder, settings=settings, models=list(models))


def exists(path: Path | str) -> bool:
    return Path(path).exists()


def found(root: Path, name: str) -> list[Path]:
    """Files called `name` anywhere under `root`."""
    return list(root.rglob(name))
