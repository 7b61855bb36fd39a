"""OpenAPI operations as tools: one tool per operation.

The tool's arguments are the operation's path, query and header parameters by name
(prefixed with their location when two share a name) plus `body` for a JSON or
form request body. GET, HEAD and OPTIONS operations are read-only; everything else
requires approval unless the configuration says otherwise. An operation without an
operationId gets a stable name from its method and path
(`GET /pets/{petId}` -> `get_pets_by_petId`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from pilothouse.tools.base import NAME_PATTERN, Tool, safe_tool_name
from pilothouse.tools.errors import OpenAPIDocumentError, ToolArgumentsError, ToolConfigError
from pilothouse.tools.http import Credential, SafeHttpClient
from pilothouse.tools.openapi_doc import OpenAPIDocument, escape_pointer
from pilothouse.tools.results import DEFAULT_RESULT_BUDGET
from pilothouse.tools.status import error_for_status
from pilothouse.util.urls import safe_url

logger = logging.getLogger(__name__)

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
READ_METHODS = frozenset({"get", "head", "options"})


@dataclass
class Param:
    arg: str  # argument name the model uses
    name: str  # wire name
    location: str  # path, query, header, cookie
    required: bool
    schema: dict[str, Any]


@dataclass
class Operation:
    method: str
    path: str
    name: str
    operation_id: str | None
    summary: str
    tags: list[str]
    params: list[Param] = field(default_factory=list)
    body_arg: str | None = None
    body_media: str | None = None
    body_required: bool = False
    body_schema: dict[str, Any] | None = None

    def parameters_schema(self) -> dict[str, Any]:
        props: dict[str, Any] = {p.arg: p.schema for p in self.params}
        required = [p.arg for p in self.params if p.required]
        if self.body_arg:
            props[self.body_arg] = self.body_schema or {}
            if self.body_required:
                required.append(self.body_arg)
        schema: dict[str, Any] = {
            "type": "object",
            "properties": props,
            "additionalProperties": False,
        }
        if required:
            schema["required"] = required
        return schema


def generated_name(method: str, path: str) -> str:
    """A stable tool name for an operation without operationId."""
    parts = [method.lower()]
    for segment in path.strip("/").split("/"):
        if not segment:
            continue
        match = re.fullmatch(r"\{(.+)\}", segment)
        parts.append(f"by_{match.group(1)}" if match else segment)
    name = safe_tool_name("_".join(parts).replace(".", "_"))
    if len("_".join(parts)) > 64:
        digest = hashlib.sha1(f"{method} {path}".encode()).hexdigest()[:6]
        name = f"{name[:57]}_{digest}"
    return name


def operations(doc: OpenAPIDocument) -> list[Operation]:
    """Every operation of the document, with its parameters as JSON Schemas."""
    ops: list[Operation] = []
    paths = doc.data.get("paths") or {}
    for path, item_raw in paths.items():
        item_where = f"/paths/{escape_pointer(path)}"
        item = doc.deref(item_raw, item_where)
        if not isinstance(item, dict):
            continue
        shared = item.get("parameters") or []
        for method in METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                ops.append(_operation(doc, path, method, op, shared, f"{item_where}/{method}"))
    names: dict[str, str] = {}
    for op in ops:
        if op.name in names:
            raise OpenAPIDocumentError(
                f"two operations map to the tool name {op.name!r} ({names[op.name]} and "
                f"{op.method.upper()} {op.path}); filter one out or give it another operationId",
                source=doc.source,
                pointer=f"/paths/{escape_pointer(op.path)}/{op.method}",
            )
        names[op.name] = f"{op.method.upper()} {op.path}"
    return ops


def _operation(
    doc: OpenAPIDocument,
    path: str,
    method: str,
    op: dict[str, Any],
    shared: list[Any],
    where: str,
) -> Operation:
    op_id = op.get("operationId")
    name = safe_tool_name(op_id) if op_id else generated_name(method, path)
    summary = " ".join(str(op.get(k) or "").strip() for k in ("summary", "description")).strip()
    operation = Operation(
        method=method,
        path=path,
        name=name,
        operation_id=op_id,
        summary=summary,
        tags=[str(t) for t in op.get("tags") or []],
    )
    merged: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
    for i, raw in enumerate(shared):
        p = doc.deref(raw, f"{where}/../parameters/{i}")
        merged[(p.get("name"), p.get("in"))] = (p, f"{where}/../parameters/{i}")
    for i, raw in enumerate(op.get("parameters") or []):
        p = doc.deref(raw, f"{where}/parameters/{i}")
        merged[(p.get("name"), p.get("in"))] = (p, f"{where}/parameters/{i}")
    counts: dict[str, int] = {}
    for (pname, _loc), _ in merged.items():
        counts[pname] = counts.get(pname, 0) + 1
    for (pname, loc), (p, pwhere) in merged.items():
        raw_schema = p.get("schema")
        if raw_schema is None and isinstance(p.get("content"), dict) and p["content"]:
            raw_schema = next(iter(p["content"].values())).get("schema")
        schema = doc.schema(raw_schema or {}, f"{pwhere}/schema", for_request=True)
        if p.get("description") and "description" not in schema:
            schema["description"] = str(p["description"]).strip()
        arg = pname if counts[pname] == 1 else f"{loc}_{pname}"
        operation.params.append(
            Param(
                arg=_arg_name(arg),
                name=pname,
                location=loc,
                required=bool(p.get("required")) or loc == "path",
                schema=schema,
            )
        )
    body = op.get("requestBody")
    if body is not None:
        body = doc.deref(body, f"{where}/requestBody")
        content = body.get("content") or {}
        media = _pick_media(content)
        if media is not None:
            used = {p.arg for p in operation.params}
            operation.body_arg = "body" if "body" not in used else "request_body"
            operation.body_media = media
            operation.body_required = bool(body.get("required"))
            schema = doc.schema(
                content[media].get("schema") or {},
                f"{where}/requestBody/content/{escape_pointer(media)}/schema",
                for_request=True,
            )
            if body.get("description") and "description" not in schema:
                schema["description"] = str(body["description"]).strip()
            operation.body_schema = schema
        elif content:
            operation.summary += f" (request body types {', '.join(content)} are not supported)"
    return operation


def _arg_name(raw: str) -> str:
    """Argument names models accept (OpenAI: ^[a-zA-Z0-9_.-]{1,64}$)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", raw)[:64]
    return name or "param"


def _pick_media(content: dict[str, Any]) -> str | None:
    for media in content:
        base = media.split(";")[0].strip().lower()
        if base == "application/json" or base.endswith("+json"):
            return media
    for media in content:
        if media.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            return media
    return None


def select(
    ops: Iterable[Operation], *, tags: Iterable[str] = (), names: Iterable[str] = ()
) -> list[Operation]:
    """Operations with any of `tags`, or whose operationId or tool name is in
    `names`; everything when both are empty. Unknown names are an error."""
    ops = list(ops)
    wanted_tags = set(tags)
    wanted_names = set(names)
    if not wanted_tags and not wanted_names:
        return ops
    known = {op.name for op in ops} | {op.operation_id for op in ops if op.operation_id}
    missing = sorted(wanted_names - known)
    if missing:
        raise ToolConfigError(
            f"openapi: no operation named {', '.join(missing)}; the operations are: "
            f"{', '.join(sorted(op.name for op in ops))}"
        )
    return [
        op
        for op in ops
        if wanted_tags & set(op.tags) or op.name in wanted_names or op.operation_id in wanted_names
    ]


def server_url(doc: OpenAPIDocument) -> str | None:
    """The first server's URL with its variables at their defaults (may be relative)."""
    servers = doc.data.get("servers") or []
    if not servers or not isinstance(servers[0], dict) or not servers[0].get("url"):
        return None
    url = str(servers[0]["url"])
    for var, spec in (servers[0].get("variables") or {}).items():
        url = url.replace("{" + var + "}", str(spec.get("default", "")))
    return url


class OpenAPITool(Tool):
    """Calls one operation of an HTTP API through the safe client."""

    def __init__(
        self,
        operation: Operation,
        *,
        base_url: str,
        client: SafeHttpClient,
        credential: Credential | None = None,
        service: str = "",
        result_budget: int = DEFAULT_RESULT_BUDGET,
    ):
        read_only = operation.method in READ_METHODS
        description = operation.summary or f"{operation.method.upper()} {operation.path}"
        if len(description) > 1024:
            description = description[:1021] + "..."
        description += f"\n(HTTP {operation.method.upper()} {operation.path})"
        if not NAME_PATTERN.match(operation.name):
            raise ToolConfigError(f"openapi: bad tool name {operation.name!r}")
        super().__init__(
            name=operation.name,
            description=description,
            parameters=operation.parameters_schema(),
            read_only=read_only,
            result_budget=result_budget,
        )
        self.operation = operation
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.credential = credential
        self.service = service

    async def invoke(self, arguments: dict[str, Any]) -> Any:
        op = self.operation
        path = op.path
        query: dict[str, Any] = {}
        headers: dict[str, str] = {"Accept": "application/json"}
        cookies: list[str] = []
        for p in op.params:
            if p.arg not in arguments:
                continue
            value = arguments[p.arg]
            if p.location == "path":
                text = _scalar(value)
                if text in (".", "..") or not text:
                    raise ToolArgumentsError(f"path parameter {p.arg} cannot be {text!r}")
                path = path.replace("{" + p.name + "}", quote(text, safe=""))
            elif p.location == "query":
                query[p.name] = (
                    [_scalar(v) for v in value] if isinstance(value, list) else _query(value)
                )
            elif p.location == "header":
                headers[p.name] = _scalar(value)
            elif p.location == "cookie":
                cookies.append(f"{p.name}={quote(_scalar(value), safe='')}")
        if cookies:
            headers["Cookie"] = "; ".join(cookies)
        json_body: Any = None
        form: dict[str, str] | None = None
        if op.body_arg and op.body_arg in arguments:
            if op.body_media and "form" in op.body_media:
                raw = arguments[op.body_arg]
                form = {k: _scalar(v) for k, v in (raw or {}).items()}
            else:
                json_body = arguments[op.body_arg]
        url = httpx.URL(self.base_url + path)
        response = await self.client.request(
            op.method.upper(),
            url,
            params=query or None,
            headers=headers,
            json_body=json_body,
            form=form,
            credential=self.credential,
        )
        where = f"{op.method.upper()} {safe_url(url)}"
        if response.status >= 400:
            raise error_for_status(
                response.status,
                _error_detail(response.content),
                response.headers,
                where=where,
                service=self.service,
            )
        if not response.content.strip():
            return {"status": response.status, "result": "done (no content)"}
        content_type = response.headers.get("content-type", "")
        if "json" in content_type:
            return response.json()
        return response.text


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _query(value: Any) -> str:
    return _scalar(value)


def _error_detail(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text[:500]
    if isinstance(data, dict):
        for key in ("message", "detail", "error_description", "error", "title"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value[:500]
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])[:500]
    return json.dumps(data)[:500]


def tools_from_document(
    doc: OpenAPIDocument,
    *,
    base_url: str | None,
    client: SafeHttpClient,
    credential: Credential | None = None,
    tags: Iterable[str] = (),
    names: Iterable[str] = (),
    doc_url: str | None = None,
    result_budget: int = DEFAULT_RESULT_BUDGET,
) -> list[OpenAPITool]:
    """One tool per selected operation."""
    base = base_url or server_url(doc)
    if base and not base.startswith(("http://", "https://")):
        if doc_url is None:
            raise ToolConfigError(
                f"openapi {doc.source}: the server URL {base!r} is relative; set `base_url` "
                "in the tool configuration"
            )
        base = str(httpx.URL(doc_url).join(base))
    if not base:
        raise ToolConfigError(
            f"openapi {doc.source}: the document names no server; set `base_url` in the tool "
            "configuration"
        )
    title = str((doc.data.get("info") or {}).get("title") or "")
    selected = select(operations(doc), tags=tags, names=names)
    return [
        OpenAPITool(
            op,
            base_url=base,
            client=client,
            credential=credential,
            service=title,
            result_budget=result_budget,
        )
        for op in selected
    ]
