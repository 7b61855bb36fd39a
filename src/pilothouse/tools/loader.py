"""Build a copilot's `Toolset` from the `tools:` list of its configuration.

    toolset = await load_tools(copilot_yaml["tools"], base_dir=copilot_folder,
                               settings=settings, source="copilot.yaml")

Each entry gets its own safe HTTP client with its own network allow-list, so one
source's permission to reach an on-premise host is not another's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pilothouse.config import Settings
from pilothouse.tools.auth import (
    ApiKey,
    BasicAuth,
    BearerToken,
    CombinedCredential,
    OAuth2ClientCredentials,
    ScopedCredential,
)
from pilothouse.tools.base import Tool
from pilothouse.tools.config import (
    ApiKeyAuth,
    AuthConfig,
    BasicAuthConfig,
    BearerAuth,
    ConnectorEntry,
    KeyTokenAuth,
    MCPEntry,
    OAuth2ClientCredentialsAuth,
    OpenAPIEntry,
    PythonEntry,
    ToolEntry,
    parse_entry,
)
from pilothouse.tools.errors import ToolConfigError, ToolError
from pilothouse.tools.http import ClientFactory, HttpLimits, SafeHttpClient
from pilothouse.tools.netpolicy import NetworkPolicy
from pilothouse.tools.openapi import tools_from_document
from pilothouse.tools.openapi_doc import OpenAPIDocument, load_document
from pilothouse.tools.python import load_python_tools
from pilothouse.tools.toolset import Toolset


async def load_tools(
    entries: Sequence[Any] | None,
    base_dir: Path,
    settings: Settings | None = None,
    *,
    source: str = "copilot.yaml",
    client_factory: ClientFactory | None = None,
) -> Toolset:
    """All tools of a copilot. On any error, what was opened is closed again and a
    `ToolConfigError`/`ToolError` says which entry failed and why."""
    environ: Mapping[str, str] = settings.environ if settings is not None else os.environ
    factory = client_factory or ClientFactory()
    toolset = Toolset()
    try:
        for index, raw in enumerate(entries or []):
            entry = parse_entry(raw, index, environ, source)
            where = f"{source}: tools[{index}]"
            part = await _load_entry(entry, base_dir, factory, where)
            try:
                _apply_options(part, entry, where)
            except ToolConfigError:
                await part.aclose()
                raise
            toolset.extend(part)
    except BaseException:
        await toolset.aclose()
        raise
    return toolset


async def _load_entry(
    entry: ToolEntry, base_dir: Path, factory: ClientFactory, where: str
) -> Toolset:
    if isinstance(entry, PythonEntry):
        module, file, functions = entry.location()
        if not functions:
            raise ToolConfigError(f"{where} (python): list the `functions` to expose")
        return Toolset(
            load_python_tools(functions=functions, module=module, file=file, base_dir=base_dir)
        )
    if isinstance(entry, MCPEntry):
        from pilothouse.tools.mcp_client import load_mcp_tools

        return await load_mcp_tools(entry, base_dir=base_dir, factory=factory, where=where)
    client = _client_for(entry, factory)
    part = Toolset(closers=[client.aclose])
    try:
        if isinstance(entry, OpenAPIEntry):
            tools = await _openapi_tools(entry, base_dir, client, where)
        else:
            from pilothouse.tools.connectors import connector_tools

            credential = build_credential(entry.auth, entry.base_url, None, where)
            tools = await connector_tools(entry, client, credential)
    except BaseException:
        await part.aclose()
        raise
    for tool in tools:
        part.add(tool)
    return part


def _client_for(entry: OpenAPIEntry | ConnectorEntry, factory: ClientFactory) -> SafeHttpClient:
    limits = HttpLimits(
        timeout_s=entry.timeout_s,
        connect_timeout_s=min(10.0, entry.timeout_s),
        max_response_bytes=entry.max_response_bytes,
    )
    return factory(NetworkPolicy(allow=tuple(entry.allow_network)), limits)


async def _openapi_tools(
    entry: OpenAPIEntry, base_dir: Path, client: SafeHttpClient, where: str
) -> list[Tool]:
    try:
        doc = await load_document(entry.openapi, base_dir=base_dir, client=client)
    except ToolConfigError:
        raise
    except ToolError as exc:
        raise ToolConfigError(f"{where} (openapi): {exc}") from None
    is_url = entry.openapi.startswith(("http://", "https://"))
    from pilothouse.tools.openapi import server_url

    base = entry.base_url or server_url(doc) or ""
    if is_url and base and not base.startswith(("http://", "https://")):
        import httpx

        base = str(httpx.URL(entry.openapi).join(base))
    credential = build_credential(entry.auth, base, doc, where) if base else None
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


def build_credential(
    auth: AuthConfig | None, origin: str, doc: OpenAPIDocument | None, where: str
) -> ScopedCredential | None:
    """The credential for `auth`, bound to the origin of `origin`."""
    if auth is None:
        return None
    if isinstance(auth, BearerAuth):
        return BearerToken(origin, auth.token)
    if isinstance(auth, BasicAuthConfig):
        return BasicAuth(origin, auth.username, auth.password)
    if isinstance(auth, KeyTokenAuth):
        return CombinedCredential(
            origin,
            [
                ApiKey(origin, "key", auth.key, "query"),
                ApiKey(origin, "token", auth.token, "query"),
            ],
        )
    schemes = _security_schemes(doc)
    if isinstance(auth, ApiKeyAuth):
        declared = next((s for s in schemes.values() if s.get("type") == "apiKey"), {})
        name = auth.name or declared.get("name")
        location = auth.location or declared.get("in") or "header"
        if not name:
            raise ToolConfigError(f"{where}: auth api_key needs `name` (and `in`)")
        return ApiKey(origin, str(name), auth.value, location, auth.prefix)
    if isinstance(auth, OAuth2ClientCredentialsAuth):
        token_url = auth.token_url
        if token_url is None:
            for scheme in schemes.values():
                flow = (scheme.get("flows") or {}).get("clientCredentials") or {}
                if scheme.get("type") == "oauth2" and flow.get("tokenUrl"):
                    token_url = str(flow["tokenUrl"])
                    break
        if token_url is None:
            raise ToolConfigError(
                f"{where}: auth oauth2_client_credentials needs `token_url` (the document "
                "declares no clientCredentials flow)"
            )
        return OAuth2ClientCredentials(
            origin,
            token_url=token_url,
            client_id=auth.client_id,
            client_secret=auth.client_secret,
            scopes=auth.scopes,
            audience=auth.audience,
            client_auth=auth.client_auth,
        )
    raise ToolConfigError(f"{where}: unsupported auth type")  # pragma: no cover


def _security_schemes(doc: OpenAPIDocument | None) -> dict[str, dict[str, Any]]:
    if doc is None:
        return {}
    schemes = (doc.data.get("components") or {}).get("securitySchemes") or {}
    out: dict[str, dict[str, Any]] = {}
    for name, scheme in schemes.items():
        resolved = doc.deref(scheme, f"/components/securitySchemes/{name}")
        if isinstance(resolved, dict):
            out[str(name)] = resolved
    return out


def _apply_options(part: Toolset, entry: ToolEntry, where: str) -> None:
    """`only`, `prefix`, `approval` and `bindings` of an entry, applied to its tools."""
    tools = list(part)
    names = {t.name for t in tools}
    if entry.only is not None:
        missing = sorted(set(entry.only) - names)
        if missing:
            raise ToolConfigError(
                f"{where}: `only` names unknown tools {', '.join(missing)}; the tools are: "
                f"{', '.join(sorted(names))}"
            )
        tools = [t for t in tools if t.name in entry.only]
    unknown = sorted(set(entry.approval) - names - {"*"})
    if unknown:
        raise ToolConfigError(f"{where}: `approval` names unknown tools {', '.join(unknown)}")
    bound_somewhere: set[str] = set()
    result: list[Tool] = []
    for tool in tools:
        approval = entry.approval.get(tool.name, entry.approval.get("*"))
        props = tool.parameters.get("properties", {})
        bindings = {k: v for k, v in entry.bindings.items() if k in props}
        bound_somewhere.update(bindings)
        renamed = f"{entry.prefix}{tool.name}" if entry.prefix else None
        if renamed is None and approval is None and not bindings:
            result.append(tool)
        else:
            result.append(
                tool.with_options(name=renamed, requires_approval=approval, bindings=bindings)
            )
    unused = sorted(set(entry.bindings) - bound_somewhere)
    if unused:
        raise ToolConfigError(
            f"{where}: bindings {', '.join(unused)} match no parameter of these tools"
        )
    part.replace_tools(result)
