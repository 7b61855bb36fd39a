"""The built-in tool sources (`python`, `openapi`, `mcp`, `connector`), declared as
`pilothouse.tool_sources` entry points in Pilothouse's pyproject.toml."""

from __future__ import annotations

from pilothouse.tools.base import Tool
from pilothouse.tools.config import ConnectorEntry, MCPEntry, OpenAPIEntry, PythonEntry
from pilothouse.tools.credentials import build_credential
from pilothouse.tools.errors import ToolConfigError, ToolError
from pilothouse.tools.sources import SourceContext, ToolSource
from pilothouse.tools.toolset import Toolset


async def _python(entry: PythonEntry, context: SourceContext) -> list[Tool]:
    from pilothouse.tools.python import load_python_tools

    module, file, functions = entry.location()
    if not functions:
        raise ToolConfigError(f"{context.where} (python): list the `functions` to expose")
    try:
        return list(
            load_python_tools(
                functions=functions, module=module, file=file, base_dir=context.base_dir
            )
        )
    except ToolConfigError as exc:
        raise ToolConfigError(f"{context.where} (python): {exc}") from None


async def _mcp(entry: MCPEntry, context: SourceContext) -> Toolset:
    from pilothouse.tools.mcp_client import load_mcp_tools

    return await load_mcp_tools(
        entry, base_dir=context.base_dir, factory=context.factory, where=context.where
    )


async def _openapi(entry: OpenAPIEntry, context: SourceContext) -> list[Tool]:
    import httpx

    from pilothouse.tools.openapi import server_url, tools_from_document
    from pilothouse.tools.openapi_doc import load_document

    client = context.http_client(entry)
    try:
        doc = await load_document(entry.openapi, base_dir=context.base_dir, client=client)
    except ToolConfigError:
        raise
    except ToolError as exc:
        raise ToolConfigError(f"{context.where} (openapi): {exc}") from None
    is_url = entry.openapi.startswith(("http://", "https://"))
    base = entry.base_url or server_url(doc) or ""
    if is_url and base and not base.startswith(("http://", "https://")):
        base = str(httpx.URL(entry.openapi).join(base))
    credential = (
        build_credential(entry.auth, base, doc, context.where, context.register_secret)
        if base
        else None
    )
    return list(
        tools_from_document(
            doc,
            base_url=base or None,
            client=client,
            credential=credential,
            tags=entry.tags,
            names=entry.operations,
            doc_url=entry.openapi if is_url else None,
            result_budget=entry.result_budget,
        )
    )


async def _connector(entry: ConnectorEntry, context: SourceContext) -> list[Tool]:
    from pilothouse.tools.connectors.registry import connector_tools

    client = context.http_client(entry)
    credential = build_credential(
        entry.auth, entry.base_url, None, context.where, context.register_secret
    )
    return await connector_tools(entry, client, credential)


PYTHON = ToolSource(PythonEntry, _python, "Python functions (schema from type hints)")
OPENAPI = ToolSource(OpenAPIEntry, _openapi, "one tool per operation of an OpenAPI 3 document")
MCP = ToolSource(MCPEntry, _mcp, "an MCP server's tools (stdio or streamable HTTP)")
CONNECTOR = ToolSource(ConnectorEntry, _connector, "a connector's curated tools")
