"""MCP servers as tools, through the official MCP Python SDK.

Two transports: stdio (a command started as a subprocess) and streamable HTTP.

Security:
- A stdio command comes only from the copilot's own configuration (`MCPEntry`),
  never from model output or an HTTP request: nothing in this module takes a
  command from anywhere else. The process gets only the SDK's minimal environment
  (PATH, HOME, ...) plus the variables the entry names, so the platform's own keys
  do not leak into it; it runs in the copilot folder unless `cwd` says otherwise.
- HTTP servers are reached through an HTTP client whose every connection is
  checked against the entry's network policy, like all other tool traffic.
- Only the tools on the entry's `allow_tools` list are exposed. Server-declared
  hints (readOnlyHint) are not trusted: every MCP tool requires approval unless
  the configuration lists it in `read_only_tools` or sets `approval`.

Each server connection lives in its own task (the SDK's contexts must be entered
and left by one task); calls race the connection's death, so a server that crashes
mid-call gives `MCPServerCrashedError` at once instead of a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import tempfile
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpcore2
import httpx2
import jsonschema
from mcp import Client
from mcp.client._transport import Transport
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError as SDKMCPError

from pilothouse.tools.base import Tool, safe_tool_name
from pilothouse.tools.config import MCPEntry, StdioServer
from pilothouse.tools.errors import (
    MCPError,
    MCPServerCrashedError,
    ToolConfigError,
    ToolTimeoutError,
)
from pilothouse.tools.guarded_backend import GuardedConnector
from pilothouse.tools.http import ClientFactory, default_ssl_context
from pilothouse.tools.netpolicy import NetworkPolicy, Resolver
from pilothouse.tools.results import ToolResult, render
from pilothouse.tools.toolset import Toolset
from pilothouse.util.urls import safe_url

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 30.0


class _GuardedBackend2(
    GuardedConnector[httpcore2.AsyncNetworkStream], httpcore2.AsyncNetworkBackend
):
    """The safe client's address check, for the SDK's HTTP stack (httpx2)."""

    connect_errors = (httpcore2.ConnectError, httpcore2.ConnectTimeout)

    def __init__(self, policy: NetworkPolicy, resolver: Resolver):
        super().__init__(policy, resolver, httpcore2.AnyIOBackend())


def guarded_httpx2_client(
    policy: NetworkPolicy,
    resolver: Resolver,
    headers: dict[str, str],
    timeout_s: float,
) -> httpx2.AsyncClient:
    context = default_ssl_context()
    transport = httpx2.AsyncHTTPTransport(verify=context, trust_env=False)
    transport._pool = httpcore2.AsyncConnectionPool(
        ssl_context=context, network_backend=_GuardedBackend2(policy, resolver)
    )
    return httpx2.AsyncClient(
        transport=transport,
        trust_env=False,
        follow_redirects=False,
        headers=headers,
        timeout=httpx2.Timeout(timeout_s, read=max(timeout_s, 300.0)),
    )


class MCPConnection:
    """One live session with an MCP server, owned by a background task."""

    def __init__(
        self,
        transport: Callable[[], Transport],
        *,
        label: str,
        call_timeout_s: float,
        stderr_path: Path | None = None,
        on_close: Callable[[], typing.Awaitable[None]] | None = None,
    ):
        self._on_close = on_close
        self._transport = transport
        self.label = label
        self.call_timeout_s = call_timeout_s
        self._stderr_path = stderr_path
        self._client: Client | None = None
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._dead = asyncio.Event()
        self._failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        self._task = asyncio.create_task(self._run(), name=f"mcp:{self.label}")
        try:
            async with asyncio.timeout(timeout_s):
                await self._ready.wait()
        except TimeoutError:
            await self.aclose()
            raise MCPError(
                f"MCP server {self.label} did not answer within {timeout_s:g} s"
            ) from None
        if self._client is None:
            detail = _describe(self._failure)
            await self.aclose()
            raise MCPError(f"cannot start MCP server {self.label}: {detail}{self._stderr_tail()}")

    async def _run(self) -> None:
        try:
            async with Client(
                self._transport(), read_timeout_seconds=self.call_timeout_s
            ) as client:
                self._client = client
                self._ready.set()
                await self._closing.wait()
        except BaseException as exc:  # the session ended: crash, refused, closed
            self._failure = exc
            if not self._closing.is_set():
                logger.warning("MCP server %s stopped: %s", self.label, _describe(exc))
        finally:
            self._dead.set()
            self._ready.set()

    async def list_tools(self) -> list[Any]:
        tools: list[Any] = []
        cursor: str | None = None
        for _page in range(100):
            result = await self._guarded(functools.partial(_list_page, cursor=cursor), "list tools")
            tools.extend(result.tools)
            cursor = result.next_cursor
            if not cursor:
                break
        return tools

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        return await self._guarded(lambda c: c.call_tool(name, arguments), f"call {name}")

    async def _guarded(self, make: Callable[[Client], typing.Awaitable[Any]], what: str) -> Any:
        client = self._client
        if client is None or self._dead.is_set():
            raise MCPServerCrashedError(
                f"MCP server {self.label} is not running ({_describe(self._failure)}); "
                f"restart the copilot to start it again{self._stderr_tail()}"
            )
        call = asyncio.ensure_future(make(client))
        dead = asyncio.ensure_future(self._dead.wait())
        try:
            done, _ = await asyncio.wait(
                {call, dead}, timeout=self.call_timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            dead.cancel()
        if call in done:
            try:
                return call.result()
            except SDKMCPError as exc:
                if "closed" in str(exc).lower():
                    self._dead.set()
                    raise MCPServerCrashedError(
                        f"MCP server {self.label} went away during {what}: {exc.error.message}"
                        f"{self._stderr_tail()}"
                    ) from None
                raise MCPError(
                    f"MCP server {self.label}: {what} failed: {exc.error.message}"
                ) from None
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await call
        if self._dead.is_set():
            raise MCPServerCrashedError(
                f"MCP server {self.label} went away during {what}{self._stderr_tail()}"
            )
        raise ToolTimeoutError(
            f"MCP server {self.label}: {what} took longer than {self.call_timeout_s:g} s"
        )

    def _stderr_tail(self) -> str:
        if self._stderr_path is None:
            return ""
        try:
            text = self._stderr_path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return ""
        return f" (server stderr ends: {text[-300:]!r})" if text else ""

    async def aclose(self) -> None:
        self._closing.set()
        if self._task is not None:
            try:
                async with asyncio.timeout(10):
                    await asyncio.shield(self._task)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
            except Exception:  # already logged in _run
                pass
        if self._on_close is not None:
            await self._on_close()
        if self._stderr_path is not None:
            with contextlib.suppress(OSError):
                self._stderr_path.unlink()


async def _list_page(client: Client, *, cursor: str | None) -> Any:
    return await client.list_tools(cursor=cursor)


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "it ended"
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


class MCPTool(Tool):
    """A tool of an MCP server."""

    def __init__(self, connection: MCPConnection, spec: Any, *, read_only: bool, budget: int):
        schema = dict(spec.input_schema or {})
        schema.setdefault("type", "object")
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            logger.warning("MCP tool %s has an invalid schema (%s)", spec.name, exc.message)
            schema = {"type": "object"}
        super().__init__(
            name=safe_tool_name(spec.name),
            description=(spec.description or spec.title or spec.name).strip(),
            parameters=schema,
            read_only=read_only,
            result_budget=budget,
        )
        self.remote_name = spec.name
        self.connection = connection

    async def invoke(self, arguments: dict[str, Any]) -> Any:
        result = await self.connection.call_tool(self.remote_name, arguments)
        texts: list[str] = []
        for block in result.content:
            kind = getattr(block, "type", "")
            if kind == "text":
                texts.append(block.text)
            elif kind == "resource" and hasattr(block.resource, "text"):
                texts.append(block.resource.text)
            else:
                texts.append(f"[{kind} content: {getattr(block, 'mime_type', '')}]")
        text = "\n".join(texts)
        if result.is_error:
            return ToolResult(content=f"Error: {text or 'the MCP tool failed'}", is_error=True)
        if result.structured_content is not None and not text:
            return ToolResult(
                content=render(result.structured_content, self.result_budget),
                data=result.structured_content,
            )
        return ToolResult(content=render(text, self.result_budget), data=result.structured_content)


async def load_mcp_tools(
    entry: MCPEntry, *, base_dir: Path, factory: ClientFactory, where: str
) -> Toolset:
    """Connect to the entry's server and wrap its allowed tools."""
    policy = NetworkPolicy(allow=tuple(entry.allow_network))
    stderr_path: Path | None = None
    on_close: Callable[[], typing.Awaitable[None]]
    if isinstance(entry.mcp, StdioServer):
        params = _stdio_params(entry.mcp, base_dir, where)
        fd, name = tempfile.mkstemp(prefix="pilothouse-mcp-", suffix=".log")
        os.close(fd)
        stderr_path = Path(name)
        errlog = stderr_path.open("a", encoding="utf-8")  # noqa: ASYNC230 - a local temp file
        label = Path(entry.mcp.command).name + (f" {entry.mcp.args[0]}" if entry.mcp.args else "")

        def transport() -> Transport:
            return stdio_client(params, errlog=errlog)

        async def close_log() -> None:
            errlog.close()

        on_close = close_log

    else:
        url = entry.mcp
        if not url.startswith(("http://", "https://")):
            raise ToolConfigError(f"{where} (mcp): {url!r} is not an http(s) URL or a command")
        label = safe_url(url)
        headers = {k: v.get_secret_value() for k, v in entry.headers.items()}
        http = guarded_httpx2_client(policy, factory.resolver, headers, entry.timeout_s)

        def transport() -> Transport:
            return streamable_http_client(url, http_client=http)

        on_close = http.aclose

    connection = MCPConnection(
        transport,
        label=label,
        call_timeout_s=entry.timeout_s,
        stderr_path=stderr_path,
        on_close=on_close,
    )
    await connection.start()
    part = Toolset(closers=[connection.aclose])
    try:
        specs = await connection.list_tools()
        by_name = {spec.name: spec for spec in specs}
        if entry.allow_tools is not None:
            missing = sorted(set(entry.allow_tools) - set(by_name))
            if missing:
                raise ToolConfigError(
                    f"{where} (mcp): allow_tools names tools the server does not have: "
                    f"{', '.join(missing)} (it has: {', '.join(sorted(by_name))})"
                )
            specs = [by_name[n] for n in entry.allow_tools]
        for spec in specs:
            read_only = spec.name in entry.read_only_tools
            part.add(MCPTool(connection, spec, read_only=read_only, budget=entry.result_budget))
    except BaseException:
        await part.aclose()
        raise
    return part


def _stdio_params(server: StdioServer, base_dir: Path, where: str) -> StdioServerParameters:
    if not server.command.strip():
        raise ToolConfigError(f"{where} (mcp): the stdio command is empty")
    cwd = base_dir if server.cwd is None else (base_dir / server.cwd)
    return StdioServerParameters(
        command=server.command,
        args=list(server.args),
        env={k: v.get_secret_value() for k, v in server.env.items()},
        cwd=str(cwd),
    )
