"""Normalise each of the three Prompty generations into a `PromptDefinition`.

- A (Prompt flow's Prompty): `model.configuration`, `model.parameters` (OpenAI names),
  `inputs: {name: {type, default}}`, `sample`, `template: jinja2`.
- B (intermediate schema): `$schema`, `id`, `version`, `metadata`,
  `model: {id, api, connection: {type, ...}, options}`, properties as lists or
  mappings with `type`, `template: {format (default mustache), parser, strict}`; no
  `template:` key means jinja2, as prompty 1.0.0b3 renders these files.
- C (v2 draft): `model` as a string or `{id, provider, apiType, connection: {kind,
  ...}, options}` (camelCase), properties with `kind`, tools with bindings, unknown keys
  ignored.

Which generation a file is written in is told by detection.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from .definition import (
    ConnectionSpec,
    Generation,
    ModelOptions,
    ModelSpec,
    PromptDefinition,
    PromptTool,
)
from .detection import detect_generation
from .document import FieldPath, PromptyDocument
from .errors import PromptyReferenceError
from .fields import (
    FieldReader,
    option_fields,
    read_connection,
    read_options,
    read_template,
)
from .property_fields import read_properties
from .references import ReferenceWalker, parse_reference
from .tool_fields import read_tools

_PROVIDERS = {"azure_openai": "azure", "azure": "azure", "openai": "openai"}


# --- building -----------------------------------------------------------------------


def build_definition(
    document: PromptyDocument,
    *,
    base_dir: Path,
    environ: Mapping[str, str],
    name: str,
    generation: Generation | None = None,
    defer_connections: bool = False,
) -> PromptDefinition:
    """Resolve references and normalise `document` into a `PromptDefinition`. In B and
    C, the connections' `${env:}` references are resolved too (an unset one is an error
    naming it) unless `defer_connections` keeps them for `ConnectionSpec.resolve`."""
    locator = document.locator

    def on_error(path: tuple[str | int, ...], exc: PromptyReferenceError) -> Exception:
        return locator.error(path, exc.detail, PromptyReferenceError)

    walker = ReferenceWalker(on_error)
    with_files = cast(dict[str, Any], walker.files(document.front_matter, base_dir))
    gen = generation or detect_generation(with_files, document.fence)
    # Connections keep their ${env:} references (resolved by ConnectionSpec.resolve):
    # in B and C an unset variable is an error, and a key for a model this copilot does
    # not run on must not stop the file from loading. A never fails, so it resolves now.
    skip: Callable[[tuple[str | int, ...]], bool]
    skip = _never if gen == "A" else _is_connection_path
    data = cast(
        dict[str, Any],
        walker.env(with_files, environ, keep_unset=gen == "A", skip=skip),
    )
    ctx = FieldReader(locator, gen, frozenset(walker.from_env))
    builder = {"A": _build_a, "B": _build_b, "C": _build_c}[gen]
    definition = builder(ctx, data, name, document.body)
    if gen == "A" or defer_connections:
        return definition
    return _resolve_connections(definition, environ)


def _resolve_connections(
    definition: PromptDefinition, environ: Mapping[str, str]
) -> PromptDefinition:
    """The definition with its model's and tools' connections resolved (B/C: an unset
    `${env:}` raises `PromptyReferenceError` with the file, line and field)."""
    model = definition.model
    if model.connection is not None:
        connection = model.connection.resolve(environ)
        model_id = model.id
        if model_id is not None and parse_reference(model_id) is not None:
            model_id = _connection_model_resolved(connection) or model_id
        model = replace(model, id=model_id, connection=connection)
    tools = tuple(
        replace(t, connection=t.connection.resolve(environ)) if t.connection is not None else t
        for t in definition.tools
    )
    return replace(definition, model=model, tools=tools)


def _never(path: tuple[str | int, ...]) -> bool:
    return False


def _is_connection_path(path: tuple[str | int, ...]) -> bool:
    if path == ("model", "connection"):
        return True
    return len(path) == 3 and path[0] == "tools" and path[2] == "connection"


_CONNECTION_MODEL_KEYS = ("azure_deployment", "deployment", "deployment_name", "model")


def _connection_model(ctx: FieldReader, connection: ConnectionSpec | None) -> str | None:
    """The model id a B/C file writes in its connection (`azure_deployment: gpt-4o`,
    as the 2024 runtime read it) when `model.id` is absent. An `${env:}` reference is
    kept as written here and resolved with the rest of the connection."""
    if connection is None:
        return None
    for key in _CONNECTION_MODEL_KEYS:
        value = connection.options.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
    return None


def _connection_model_resolved(connection: ConnectionSpec) -> str | None:
    for key in _CONNECTION_MODEL_KEYS:
        value = connection.options.get(key)
        if isinstance(value, str) and value:
            return value
    return None


# --- generation A -------------------------------------------------------------------

_A_OPTIONS = {
    "temperature": "temperature",
    "max_tokens": "max_output_tokens",
    "max_completion_tokens": "max_output_tokens",
    "top_p": "top_p",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "seed": "seed",
    "stop": "stop",
    "parallel_tool_calls": "allow_multiple_tool_calls",
    "response_format": "response_format",
    "tool_choice": "tool_choice",
}


def _build_a(ctx: FieldReader, data: dict[str, Any], name: str, body: str) -> PromptDefinition:
    model_raw = ctx.mapping(data.get("model"), ("model",))
    config = model_raw.get("configuration")
    params = ctx.mapping(model_raw.get("parameters"), ("model", "parameters"))
    tools_raw = params.pop("tools", None)
    functions_raw = params.pop("functions", None)
    deployment = params.pop("deployment_name", None)
    model_id: str | None = ctx.string(deployment, ("model", "parameters", "deployment_name"))
    provider: str | None = None
    connection: ConnectionSpec | None = None
    if isinstance(config, Mapping):
        cfg = ctx.mapping(config, ("model", "configuration"))
        kind = ctx.string(cfg.pop("type", None), ("model", "configuration", "type"))
        provider = _PROVIDERS.get(kind or "", kind)
        azure_style = "azure_endpoint" in cfg or "azure_deployment" in cfg
        for key in ("azure_deployment", "model", "name"):
            if key in cfg:
                model_id = ctx.string(cfg.pop(key), ("model", "configuration", key))
                break
        if kind is None and azure_style:
            provider = "azure"
        connection = read_connection(ctx, cfg, ("model", "configuration"), kind)
    elif config is not None:
        raise ctx.fail(("model", "configuration"), "expected a mapping with type and settings")
    legacy_connection = model_raw.get("connection")
    if connection is None and isinstance(legacy_connection, str):
        connection = ConnectionSpec(
            kind="reference", name=legacy_connection, path=ctx.locator.path, keep_unset_env=True
        )
    options = read_options(ctx, params, ("model", "parameters"), _A_OPTIONS, passthrough=True)
    model = ModelSpec(
        id=model_id,
        provider=provider,
        api=ctx.text(model_raw.get("api"), ("model", "api")) or "chat",
        connection=connection,
        options=options,
        response=ctx.text(model_raw.get("response"), ("model", "response")) or "first",
    )
    tools: tuple[PromptTool, ...] = ()
    if tools_raw is not None:
        tools += read_tools(ctx, tools_raw, ("model", "parameters", "tools"))
    if functions_raw is not None:
        tools += read_tools(ctx, functions_raw, ("model", "parameters", "functions"))
    metadata: dict[str, Any] = {k: data[k] for k in ("authors", "tags", "version") if k in data}
    return PromptDefinition(
        name=ctx.text(data.get("name"), ("name",)) or name,
        generation="A",
        description=ctx.text(data.get("description"), ("description",)),
        model=model,
        inputs=read_properties(
            ctx, data.get("inputs"), ("inputs",), required_if_no_default=True, shorthand=True
        ),
        outputs=read_properties(ctx, data.get("outputs"), ("outputs",), output=True),
        tools=tools,
        template=read_template(ctx, data.get("template"), ("template",), "jinja2"),
        body=body,
        metadata=metadata,
        sample=data.get("sample"),
    )


# --- generation B -------------------------------------------------------------------

_B_OPTIONS = {
    **_A_OPTIONS,
    "maxOutputTokens": "max_output_tokens",
    "maxTokens": "max_output_tokens",
    "topP": "top_p",
    "topK": "top_k",
    "top_k": "top_k",
    "frequencyPenalty": "frequency_penalty",
    "presencePenalty": "presence_penalty",
    "stopSequences": "stop",
    "stop_sequences": "stop",
    "responseFormat": "response_format",
    "toolChoice": "tool_choice",
    "parallelToolCalls": "allow_multiple_tool_calls",
    "allowMultipleToolCalls": "allow_multiple_tool_calls",
}


def _build_b(ctx: FieldReader, data: dict[str, Any], name: str, body: str) -> PromptDefinition:
    model_raw = data.get("model")
    if isinstance(model_raw, str):
        model = ModelSpec(id=model_raw)
    else:
        m = ctx.mapping(model_raw, ("model",))
        conn_raw = m.get("connection")
        connection = None
        provider = ctx.string(m.get("provider"), ("model", "provider"))
        if conn_raw is not None:
            cfg = ctx.mapping(conn_raw, ("model", "connection"))
            kind = ctx.string(cfg.pop("type", None), ("model", "connection", "type"))
            provider = provider or _PROVIDERS.get(kind or "", kind)
            connection = read_connection(ctx, cfg, ("model", "connection"), kind)
        model = ModelSpec(
            id=ctx.string(m.get("id"), ("model", "id")) or _connection_model(ctx, connection),
            provider=provider,
            api=ctx.text(m.get("api") or m.get("apiType"), ("model", "api")) or "chat",
            connection=connection,
            options=read_options(
                ctx,
                ctx.mapping(m.get("options"), ("model", "options")),
                ("model", "options"),
                _B_OPTIONS,
                passthrough=True,
            ),
        )
    metadata: dict[str, Any] = {}
    for key in ("$schema", "id", "version"):
        if key in data:
            metadata[key] = data[key]
    metadata.update(ctx.mapping(data.get("metadata"), ("metadata",)))
    return PromptDefinition(
        name=ctx.text(data.get("name"), ("name",)) or name,
        generation="B",
        description=ctx.text(data.get("description"), ("description",)),
        model=model,
        inputs=read_properties(ctx, data.get("inputs"), ("inputs",), shorthand=True),
        outputs=read_properties(ctx, data.get("outputs"), ("outputs",), output=True),
        tools=read_tools(ctx, data.get("tools"), ("tools",)),
        # No `template:` key: Jinja2; a `template:` mapping naming no format: mustache
        # (both as prompty 1.0.0b3, the runtime of this schema, reads them).
        template=read_template(
            ctx,
            data.get("template"),
            ("template",),
            "mustache" if data.get("template") is not None else "jinja2",
        ),
        body=body,
        metadata=metadata,
    )


# --- generation C -------------------------------------------------------------------

_C_OPTIONS = {
    "temperature": "temperature",
    "maxOutputTokens": "max_output_tokens",
    "topP": "top_p",
    "topK": "top_k",
    "frequencyPenalty": "frequency_penalty",
    "presencePenalty": "presence_penalty",
    "seed": "seed",
    "stopSequences": "stop",
    "allowMultipleToolCalls": "allow_multiple_tool_calls",
}


def _build_c(ctx: FieldReader, data: dict[str, Any], name: str, body: str) -> PromptDefinition:
    model_raw = data.get("model")
    if isinstance(model_raw, str):
        model = ModelSpec(id=model_raw)
    else:
        m = ctx.mapping(model_raw, ("model",))
        connection = None
        if m.get("connection") is not None:
            cfg = ctx.mapping(m["connection"], ("model", "connection"))
            kind = ctx.string(cfg.pop("kind", None), ("model", "connection", "kind"))
            connection = read_connection(ctx, cfg, ("model", "connection"), kind)
        options_raw = ctx.mapping(m.get("options"), ("model", "options"))
        extra = ctx.mapping(
            options_raw.pop("additionalProperties", None),
            ("model", "options", "additionalProperties"),
        )
        options = read_options(
            ctx, options_raw, ("model", "options"), _C_OPTIONS, passthrough=False
        )
        if extra:
            options = ModelOptions(**{**option_fields(options), "extra": extra})
        model = ModelSpec(
            id=ctx.string(m.get("id"), ("model", "id")) or _connection_model(ctx, connection),
            provider=ctx.string(m.get("provider"), ("model", "provider")),
            api=ctx.text(m.get("apiType"), ("model", "apiType")) or "chat",
            connection=connection,
            options=options,
        )
    inputs_raw = data.get("inputs")
    inputs_path: FieldPath = ("inputs",)
    if inputs_raw is None and isinstance(data.get("inputSchema"), Mapping):
        inputs_raw, inputs_path = (
            data["inputSchema"].get("properties"),
            ("inputSchema", "properties"),
        )
    outputs_raw = data.get("outputs")
    outputs_path: FieldPath = ("outputs",)
    if outputs_raw is None and isinstance(data.get("outputSchema"), Mapping):
        outputs_raw = data["outputSchema"].get("properties")
        outputs_path = ("outputSchema", "properties")
    metadata = ctx.mapping(data.get("metadata"), ("metadata",))
    if "displayName" in data:
        metadata = {"displayName": data["displayName"], **metadata}
    return PromptDefinition(
        name=ctx.text(data.get("name"), ("name",)) or name,
        generation="C",
        description=ctx.text(data.get("description"), ("description",)),
        model=model,
        inputs=read_properties(ctx, inputs_raw, inputs_path, shorthand=True),
        outputs=read_properties(ctx, outputs_raw, outputs_path, output=True, shorthand=True),
        tools=read_tools(ctx, data.get("tools"), ("tools",)),
        template=read_template(ctx, data.get("template"), ("template",), "jinja2"),
        body=body,
        metadata=metadata,
    )
