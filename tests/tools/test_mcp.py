"""A real MCP server (written with the SDK, tests/tools/fakes/mcp_server.py) over
stdio and streamable HTTP: tools listed and called, the allow-list, a crash mid-call."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from pilothouse.config import Settings
from pilothouse.tools.errors import MCPError, ToolConfigError
from pilothouse.tools.loader import load_tools
from pilothouse.tools.mcp_client import MCPTool

SERVER = Path(__file__).resolve().parent / "fakes" / "mcp_server.py"


def stdio_entry(**extra: Any) -> dict[str, Any]:
    return {"mcp": {"command": sys.executable, "args": [str(SERVER)]}, **extra}


async def test_stdio_server_tools_are_listed_and_called(tmp_path: Path) -> None:
    async with await load_tools([stdio_entry(read_only_tools=["add"])], tmp_path) as ts:
        assert sorted(ts.names) == ["add", "crash", "delete_record", "fail", "search_docs", "slow"]
        add = ts.get("add")
        assert add is not None and add.read_only and not add.requires_approval
        assert add.spec().parameters["required"] == ["a", "b"]
        assert (await ts.call("add", {"a": 2, "b": 40})).content == "42"
        # everything not declared read-only in the configuration needs approval
        assert ts.get("search_docs").requires_approval  # type: ignore[union-attr]
        denied = await ts.call("search_docs", {"query": "vpn"})
        assert denied.is_error and "approval" in denied.content
        found = await ts.call("search_docs", {"query": "my VPN is down"}, approved=True)
        assert "Reconnect" in found.content
        failed = await ts.call("fail", {"reason": "boom"}, approved=True)
        assert failed.is_error and failed.content.startswith("Error:")
        bad = await ts.call("add", {"a": "two", "b": 1})
        assert bad.is_error and "'a': 'two' is not of type 'integer'" in bad.content


async def test_allow_list_limits_what_the_copilot_sees(tmp_path: Path) -> None:
    entry = stdio_entry(allow_tools=["search_docs"], approval={"*": False})
    async with await load_tools([entry], tmp_path) as ts:
        assert ts.names == ["search_docs"]
        refused = await ts.call("delete_record", {"record_id": "1"}, approved=True)
        assert refused.is_error and "no tool named 'delete_record'" in refused.content
        assert not (await ts.call("search_docs", {"query": "printer"})).is_error
    with pytest.raises(ToolConfigError, match="does not have: rm_rf"):
        await load_tools([stdio_entry(allow_tools=["rm_rf"])], tmp_path)


async def test_a_server_that_crashes_mid_call_gives_a_typed_error(tmp_path: Path) -> None:
    entry = stdio_entry(approval={"*": False}, timeout_s=60)
    async with await load_tools([entry], tmp_path) as ts:
        started = time.monotonic()
        crashed = await ts.call("crash", {})
        assert time.monotonic() - started < 20  # not a hang until the timeout
        assert crashed.is_error and "went away" in crashed.content
        after = await ts.call("add", {"a": 1, "b": 1})
        assert after.is_error and "not running" in after.content


async def test_a_slow_call_times_out(tmp_path: Path) -> None:
    entry = stdio_entry(approval={"*": False}, timeout_s=60)
    async with await load_tools([entry], tmp_path) as ts:
        slow = ts.get("slow")
        assert isinstance(slow, MCPTool)
        # The 1 s deadline for this call alone: loading (listing the tools) and the
        # call after it once had it too, and on a busy machine missed it themselves.
        slow.connection.call_timeout_s = 1
        result = await ts.call("slow", {"seconds": 30})
        assert result.is_error and "took longer than 1 s" in result.content
        slow.connection.call_timeout_s = 60
        assert (await ts.call("add", {"a": 1, "b": 2})).content == "3"  # still usable


async def test_a_command_that_does_not_start_is_a_clear_error(tmp_path: Path) -> None:
    entry = {"mcp": {"command": sys.executable, "args": ["-c", "import sys; sys.exit(7)"]}}
    with pytest.raises(MCPError, match="cannot start MCP server"):
        await load_tools([entry], tmp_path)
    with pytest.raises(ToolConfigError, match=r"\{command: \.\.\., args"):
        await load_tools([{"mcp": ["python", "server.py"]}], tmp_path)


async def test_stdio_server_env_gets_only_configured_variables(tmp_path: Path) -> None:
    script = tmp_path / "envserver.py"
    script.write_text(
        "import os\n"
        "from mcp.server.mcpserver import MCPServer\n"
        "s = MCPServer('env')\n"
        "@s.tool()\n"
        "def env(name: str) -> str:\n"
        "    '''Read a variable.'''\n"
        "    return os.environ.get(name, '<unset>')\n"
        "s.run('stdio')\n"
    )
    settings = Settings(home=tmp_path, environ={"TICKET_TOKEN": "tt-1"})
    entry = {
        "mcp": {
            "command": sys.executable,
            "args": ["envserver.py"],
            "env": {"TICKET_TOKEN": "${env:TICKET_TOKEN}"},
        },
        "read_only_tools": ["env"],
    }
    import os

    os.environ["PILOTHOUSE_TEST_PLATFORM_SECRET"] = "should-not-leak"
    try:
        async with await load_tools([entry], tmp_path, settings) as ts:
            assert (await ts.call("env", {"name": "TICKET_TOKEN"})).content == "tt-1"
            leaked = await ts.call("env", {"name": "PILOTHOUSE_TEST_PLATFORM_SECRET"})
            assert leaked.content == "<unset>"
    finally:
        del os.environ["PILOTHOUSE_TEST_PLATFORM_SECRET"]


@contextmanager
def serve_with_lifespan(app: Any) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "MCP HTTP server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)


async def test_streamable_http_server(tmp_path: Path) -> None:
    from tests.tools.fakes.mcp_server import server

    with serve_with_lifespan(server.streamable_http_app()) as base:
        port = base.rsplit(":", 1)[1]
        entry = {
            "mcp": f"{base}/mcp",
            "allow_tools": ["add", "search_docs"],
            "read_only_tools": ["add", "search_docs"],
            "allow_network": [f"127.0.0.1:{port}"],
        }
        async with await load_tools([entry], tmp_path) as ts:
            assert sorted(ts.names) == ["add", "search_docs"]
            assert (await ts.call("add", {"a": 20, "b": 22})).content == "42"
            assert "facilities" in (await ts.call("search_docs", {"query": "printer"})).content
        # the same server without an allow-list entry for loopback is refused
        with pytest.raises(MCPError, match="refused"):
            await load_tools([{"mcp": f"{base}/mcp"}], tmp_path)
