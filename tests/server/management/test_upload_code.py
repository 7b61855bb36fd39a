"""Uploaded copilots bring no code unless the server allows it: Python tool files,
Python modules outside `[server] upload_tool_modules`, MCP stdio commands and other
tool sources are refused (403 code_upload_disabled) before anything is imported or
started; `--allow-code-upload` lifts it; uploading needs `copilots:write` (or admin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilothouse.config import Settings
from pilothouse.server.keys import KeyStore
from pilothouse.server.management.router import open_managed_copilots
from pilothouse.server.management.state import copilots_dir
from pilothouse.server.upload_policy import CodePolicy
from pilothouse.tools.config import SourceEntry
from pilothouse.tools.sources import TOOL_SOURCES, ToolSource

from .conftest import ServeFactory, copilot_files, zip_bytes


class _ShellEntry(SourceEntry):
    shell: str


async def _no_tools(entry: Any, context: Any) -> list[Any]:
    return []


PLANTED = "from pathlib import Path\nPath({marker!r}).write_text('ran')\n"


def _definition(tools: str) -> str:
    return f"name: planted\ninstructions: You help.\ntools:\n{tools}"


def _upload(files: dict[str, str]) -> dict[str, Any]:
    return {"files": {"archive": ("c.zip", zip_bytes(files), "application/zip")}}


@pytest.mark.parametrize(
    ("tools", "field"),
    [
        ("  - python: tools.py\n", "tools.0"),
        ("  - tools.py\n", "tools.0"),  # the string shorthand
        ("  - python: os:system\n", "tools.0"),  # an installed module is code too
        ("  - python: subprocess\n    functions: [run]\n", "tools.0"),
        (
            "  - openapi: https://api.example.com/openapi.json\n"
            "  - mcp: {command: sh, args: [-c, 'touch /tmp/x']}\n",
            "tools.1",
        ),
    ],
)
async def test_an_upload_that_brings_code_is_refused_and_nothing_runs(
    serve: ServeFactory, tmp_path: Path, tools: str, field: str
) -> None:
    server = await serve(allow_code_upload=None)
    marker = tmp_path / "ran"
    files = {"copilot.yaml": _definition(tools), "tools.py": PLANTED.format(marker=str(marker))}
    response = await server.client.post("/api/copilots", **_upload(files))
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "code_upload_disabled"
    assert "--allow-code-upload" in error["message"]
    assert [p["field"] for p in error["problems"]] == [field]
    assert not marker.exists()
    assert (await server.client.get("/api/copilots")).json() == {"copilots": []}
    assert not (copilots_dir(server.settings) / "planted").exists()


async def test_an_update_that_adds_code_is_refused_and_the_old_version_serves(
    serve: ServeFactory,
) -> None:
    server = await serve(allow_code_upload=None)
    safe = {"copilot.yaml": "name: planted\ninstructions: You help.\n"}
    assert (await server.client.post("/api/copilots", **_upload(safe))).status_code == 201
    changed = {"copilot.yaml": _definition("  - python: tools.py\n"), "tools.py": "x = 1\n"}
    response = await server.client.put("/api/copilots/planted", **_upload(changed))
    assert response.status_code == 403
    detail = (await server.client.get("/api/copilots/planted")).json()
    assert detail["tools"] == [] and detail["files"] == ["copilot.yaml"]


async def test_allowed_modules_and_the_allow_flag(serve: ServeFactory, settings: Settings) -> None:
    allowed = settings.model_copy(
        update={
            "server": settings.server.model_copy(
                update={"upload_tool_modules": ["tests.server.management"]}
            )
        }
    )
    policy = CodePolicy.of(allowed.server)
    assert policy.problems([{"python": "tests.server.management.upload_tools:lookup"}]) == []
    assert policy.problems([{"python": "tests.server.management_other:x"}])  # not a submodule
    assert policy.problems([{"python": "os:system"}])
    assert policy.problems([{"mcp": "https://mcp.example.com/mcp"}]) == []
    assert policy.problems([{"connector": "jira", "base_url": "https://x.example"}]) == []
    shell = ToolSource(entry=_ShellEntry, load=_no_tools)
    with TOOL_SOURCES.registered("shell", shell):  # a plugin's source may run anything
        assert policy.problems([{"shell": "rm -rf /"}])
    assert CodePolicy(allow_code=True).problems([{"python": "tools.py"}]) == []

    server = await serve(allow_code_upload=True)  # --allow-code-upload
    response = await server.client.post("/api/copilots", **_upload(copilot_files()))
    assert response.status_code == 201, response.text
    assert "create_ticket" in response.json()["tools"]


async def test_uploading_needs_copilots_write(
    serve: ServeFactory, keys: tuple[KeyStore, str, str]
) -> None:
    server = await serve(allow_code_upload=None)
    writer, _ = keys[0].create("pipeline", ["copilots:write"])
    safe = {"copilot.yaml": "name: planted\ninstructions: You help.\n"}
    refused = await server.chat_client.post("/api/copilots", **_upload(safe))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope"
    headers = {"Authorization": f"Bearer {writer}"}
    created = await server.anonymous.post("/api/copilots", headers=headers, **_upload(safe))
    assert created.status_code == 201, created.text
    # copilots:write is not admin: no knowledge, runs or conversations of others
    assert (await server.anonymous.get("/api/runs", headers=headers)).status_code == 403
    assert (await server.anonymous.get("/api/knowledge", headers=headers)).status_code == 403


async def test_a_managed_copilot_with_code_is_not_served_after_a_restart_without_the_flag(
    serve: ServeFactory, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    folder = copilots_dir((await serve(allow_code_upload=None)).settings) / "planted"
    folder.mkdir(parents=True)
    (folder / "copilot.yaml").write_text(_definition("  - python: tools.py\n"))
    (folder / "tools.py").write_text(PLANTED.format(marker=str(marker)))
    server = await serve(allow_code_upload=None)  # a restart: managed copilots reopen
    assert (await server.client.get("/api/copilots")).json() == {"copilots": []}
    assert await open_managed_copilots(server.app.context) == []
    assert not marker.exists()
