"""A real MCP server, written with the official SDK, for the MCP client tests.

Run as a script it speaks stdio; `server.streamable_http_app()` serves it over
streamable HTTP. `crash` kills the process in the middle of a call.
"""

from __future__ import annotations

import asyncio
import os
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("pilothouse-test-server")

DOCS = {
    "vpn": "To reset the VPN, open the client and choose Reconnect.",
    "printer": "Printers are managed by facilities; file a ticket.",
}


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def search_docs(query: str) -> str:
    """Search the help-desk articles."""
    hits = [text for key, text in DOCS.items() if key in query.lower()]
    return "\n".join(hits) or "no article found"


@server.tool()
def delete_record(record_id: str) -> str:
    """Delete a record (a write action)."""
    return f"deleted {record_id}"


@server.tool()
def fail(reason: str) -> str:
    """Always fails with the reason given."""
    raise ValueError(reason)


@server.tool()
async def crash() -> str:
    """Kill the server process mid-call."""
    sys.stderr.flush()
    os._exit(3)


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return "done"


if __name__ == "__main__":
    server.run("stdio")
