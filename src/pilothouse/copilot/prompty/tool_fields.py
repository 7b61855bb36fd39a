"""Readers for the tools a prompt declares (`tools:`, or the older
`model.parameters.tools` and `functions`) and their input bindings; like the other
field readers, they validate as they go and raise `PromptyError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .definition import PromptTool, ToolBinding
from .document import FieldPath
from .fields import FieldReader, describe, read_connection
from .properties import object_schema
from .property_fields import read_properties


def read_tools(ctx: FieldReader, raw: Any, path: FieldPath) -> tuple[PromptTool, ...]:
    if raw is None:
        return ()
    entries: list[tuple[Any, FieldPath, str | None]]
    if isinstance(raw, list):
        entries = [(v, (*path, i), None) for i, v in enumerate(raw)]
    elif isinstance(raw, Mapping):
        entries = [(v, (*path, str(k)), str(k)) for k, v in raw.items()]
    else:
        raise ctx.fail(path, f"expected a list of tools, found {describe(raw)}")
    tools = [read_tool(ctx, value, here, key) for value, here, key in entries]
    names = [t.name for t in tools]
    for index, tool in enumerate(tools):
        if tool.name in names[:index]:
            raise ctx.fail(entries[index][1], f"the tool {tool.name!r} is declared twice")
    return tuple(tools)


_TOOL_FIELDS = frozenset(
    {
        "name",
        "id",
        "kind",
        "type",
        "description",
        "parameters",
        "strict",
        "bindings",
        "connection",
        "serverName",
        "approvalMode",
        "allowedTools",
        "specification",
    }
)


def read_tool(ctx: FieldReader, raw: Any, path: FieldPath, key: str | None) -> PromptTool:
    spec = ctx.mapping(raw, path)
    if spec.get("type") == "function" and isinstance(spec.get("function"), Mapping):
        # OpenAI format: {type: function, function: {name, description, parameters, strict}}
        path = (*path, "function")
        spec = {"kind": "function", **ctx.mapping(spec["function"], path)}
    # The 2024 runtime keyed tools by `id:` (`- id: bing`): the same as `name:`.
    name_key = "name" if "name" in spec or "id" not in spec else "id"
    name = ctx.string(spec.get(name_key), (*path, name_key)) or key
    if not name:
        raise ctx.fail(path, "a tool needs a name (`name:`, or `id:` in 2024-style files)")
    options_raw = spec.get("options")
    if spec.get("parameters") is None and isinstance(options_raw, Mapping):
        # 2024 style: the parameters sit under `options`
        if options_raw.get("parameters") is not None:
            spec["parameters"] = options_raw["parameters"]
            path_params: FieldPath = (*path, "options", "parameters")
        else:
            path_params = (*path, "parameters")
    else:
        path_params = (*path, "parameters")
    kind = (ctx.string(spec.get("kind", spec.get("type")), (*path, "kind")) or "function").lower()
    parameters: dict[str, Any] = {"type": "object", "properties": {}}
    if spec.get("parameters") is not None:
        parameters = read_parameters(ctx, spec["parameters"], path_params)
    bindings = read_bindings(ctx, spec.get("bindings"), (*path, "bindings"))
    known = {p for p in parameters.get("properties", {})}
    for index, binding in enumerate(bindings):
        if kind == "function" and known and binding.parameter not in known:
            where: str | int = binding.parameter if isinstance(spec["bindings"], Mapping) else index
            raise ctx.fail(
                (*path, "bindings", where),
                f"binding {binding.parameter!r} does not name a parameter of tool {name!r}",
            )
    connection = None
    if spec.get("connection") is not None:
        conn_raw = spec["connection"]
        if isinstance(conn_raw, str):
            conn_raw = {"kind": "reference", "name": conn_raw}
        cfg = ctx.mapping(conn_raw, (*path, "connection"))
        conn_kind = ctx.string(
            cfg.pop("kind", cfg.pop("type", None)), (*path, "connection", "kind")
        )
        connection = read_connection(ctx, cfg, (*path, "connection"), conn_kind)
    allowed = spec.get("allowedTools")
    return PromptTool(
        name=name,
        kind=kind,
        description=ctx.text(spec.get("description"), (*path, "description")),
        parameters=parameters,
        strict=ctx.boolean(spec.get("strict"), (*path, "strict")),
        bindings=bindings,
        connection=connection,
        server_name=ctx.string(spec.get("serverName"), (*path, "serverName")),
        approval_mode=spec.get("approvalMode"),
        allowed_tools=None if allowed is None else ctx.strings(allowed, (*path, "allowedTools")),
        specification=spec.get("specification"),
        options={k: v for k, v in spec.items() if k not in _TOOL_FIELDS},
    )


def read_parameters(ctx: FieldReader, raw: Any, path: FieldPath) -> dict[str, Any]:
    """Tool parameters as JSON Schema. Accepted: a JSON Schema object, or properties as
    a list (`[{name, kind, description, required}]`) or a mapping."""
    if isinstance(raw, Mapping) and (raw.get("type") == "object" or "properties" in raw):
        if "properties" in raw and not isinstance(raw["properties"], Mapping):
            props = read_properties(ctx, raw["properties"], (*path, "properties"))
            return object_schema(props)
        return {str(k): v for k, v in raw.items()}
    return object_schema(read_properties(ctx, raw, path))


def read_bindings(ctx: FieldReader, raw: Any, path: FieldPath) -> tuple[ToolBinding, ...]:
    if raw is None:
        return ()
    entries: list[tuple[str | None, Any, FieldPath]]
    if isinstance(raw, Mapping):
        entries = [(str(k), v, (*path, str(k))) for k, v in raw.items()]
    elif isinstance(raw, list):
        entries = [(None, v, (*path, i)) for i, v in enumerate(raw)]
    else:
        raise ctx.fail(path, f"expected a list or mapping of bindings, found {describe(raw)}")
    out: list[ToolBinding] = []
    for key, value, here in entries:
        if isinstance(value, str) and key is not None:
            out.append(ToolBinding(parameter=key, input=value))
            continue
        spec = ctx.mapping(value, here)
        parameter = key or ctx.string(spec.get("name"), (*here, "name"))
        if not parameter:
            raise ctx.fail(here, "a binding needs the name of the parameter it fills")
        if "value" in spec:
            out.append(ToolBinding(parameter=parameter, value=spec["value"]))
        else:
            source = ctx.string(spec.get("input"), (*here, "input"))
            if not source:
                raise ctx.fail(here, "a binding needs `input` (an input's name) or `value`")
            out.append(ToolBinding(parameter=parameter, input=source))
    return tuple(out)
