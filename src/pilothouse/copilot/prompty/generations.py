"""Tell the three Prompty generations apart and normalise each into a `PromptDefinition`.

- A (Prompt flow's Prompty): `model.configuration`, `model.parameters` (OpenAI names),
  `inputs: {name: {type, default}}`, `sample`, `template: jinja2`.
- B (intermediate schema): `$schema`, `id`, `version`, `metadata`,
  `model: {id, api, connection: {type, ...}, options}`, properties as lists or
  mappings with `type`, `template: {format (default mustache), parser, strict}`.
- C (v2 draft): `model` as a string or `{id, provider, apiType, connection: {kind,
  ...}, options}` (camelCase), properties with `kind`, tools with bindings, unknown keys
  ignored.

Detection follows the spec: `model.configuration` means A, `model.connection.type`
means B, `model.connection.kind` or `model.provider` means C. Files that say none of
these are told apart by their other keys (see `detect_generation`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from pydantic import SecretStr

from .definition import (
    MISSING,
    ConnectionSpec,
    Generation,
    ModelOptions,
    ModelSpec,
    PromptDefinition,
    PromptTool,
    PropertySpec,
    TemplateFormat,
    TemplateSpec,
    ToolBinding,
    is_secret_key,
    object_schema,
)
from .document import FieldPath, Locator, PromptyDocument
from .errors import PromptyError, PromptyReferenceError
from .references import ReferenceWalker

_KIND_ALIASES = {
    "string": "string",
    "str": "string",
    "text": "string",
    "integer": "integer",
    "int": "integer",
    "float": "float",
    "double": "float",
    "number": "float",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "object": "object",
    "dict": "object",
    "thread": "thread",
    "image": "image",
    "file": "file",
    "file_path": "file",
    "audio": "audio",
}

_FORMATS: dict[str, TemplateFormat] = {
    "jinja2": "jinja2",
    "jinja": "jinja2",
    "mustache": "mustache",
}

_PROVIDERS = {"azure_openai": "azure", "azure": "azure", "openai": "openai"}


# --- detection ----------------------------------------------------------------------


def detect_generation(front_matter: Mapping[str, Any], fence: str | None) -> Generation:
    """Which generation a front matter is written in.

    The spec's rules first (`model.configuration` -> A, `model.connection.type` -> B,
    `model.connection.kind` or `model.provider` -> C); then, for files that say none of
    those: a bare-string model, a `+++` fence or no front matter, `kind` on a property,
    or `inputSchema`/`outputSchema`/`displayName` mean C; `$schema`, `id`, or a string
    `template.format` mean B; `model.parameters`, `model.api`, `sample`, or properties
    with `type` mean A; anything else is read as C (the current draft, which ignores
    unknown keys).
    """
    model = front_matter.get("model")
    if isinstance(model, Mapping):
        if "configuration" in model:
            return "A"
        connection = model.get("connection")
        if isinstance(connection, Mapping):
            if "type" in connection:
                return "B"
            if "kind" in connection:
                return "C"
        if "provider" in model:
            return "C"
    if isinstance(model, str) or fence == "+++" or fence is None:
        return "C"
    if any(key in front_matter for key in ("inputSchema", "outputSchema", "displayName")):
        return "C"
    if _properties_use(front_matter, "kind"):
        return "C"
    template = front_matter.get("template")
    if (
        "$schema" in front_matter
        or "id" in front_matter
        or (isinstance(template, Mapping) and isinstance(template.get("format"), str))
    ):
        return "B"
    if isinstance(model, Mapping) and ("parameters" in model or "api" in model):
        return "A"
    if "sample" in front_matter or _properties_use(front_matter, "type"):
        return "A"
    return "C"


def _properties_use(front_matter: Mapping[str, Any], key: str) -> bool:
    for section in ("inputs", "outputs"):
        props = front_matter.get(section)
        values: list[Any] = []
        if isinstance(props, Mapping):
            values = list(props.values())
        elif isinstance(props, list):
            values = props
        if any(isinstance(v, Mapping) and key in v for v in values):
            return True
    return False


# --- building -----------------------------------------------------------------------


def build_definition(
    document: PromptyDocument,
    *,
    base_dir: Path,
    environ: Mapping[str, str],
    name: str,
    generation: Generation | None = None,
) -> PromptDefinition:
    """Resolve references and normalise `document` into a `PromptDefinition`."""
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
    ctx = _Context(locator, gen)
    builder = {"A": _build_a, "B": _build_b, "C": _build_c}[gen]
    return builder(ctx, data, name, document.body)


def _never(path: tuple[str | int, ...]) -> bool:
    return False


def _is_connection_path(path: tuple[str | int, ...]) -> bool:
    if path == ("model", "connection"):
        return True
    return len(path) == 3 and path[0] == "tools" and path[2] == "connection"


class _Context:
    """Validation helpers that raise errors naming the file, line and field."""

    def __init__(self, locator: Locator, generation: Generation) -> None:
        self.locator = locator
        self.generation = generation

    def fail(self, path: FieldPath, message: str) -> PromptyError:
        return self.locator.error(path, message)

    def mapping(self, value: Any, path: FieldPath) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected a mapping, found {_describe(value)}")
        return {str(k): v for k, v in value.items()}

    def string(self, value: Any, path: FieldPath, default: str | None = None) -> str | None:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(path, f"expected text, found {_describe(value)}")
        return str(value)

    def text(self, value: Any, path: FieldPath) -> str:
        return self.string(value, path, "") or ""

    def number(self, value: Any, path: FieldPath) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"expected a number, found {_describe(value)}")
        return value

    def integer(self, value: Any, path: FieldPath) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected a whole number, found {_describe(value)}")
        return value

    def boolean(self, value: Any, path: FieldPath, default: bool = False) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, found {_describe(value)}")
        return value

    def strings(self, value: Any, path: FieldPath) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(path, f"expected a list of text values, found {_describe(value)}")
        return tuple(value)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {value!r}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


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


def _build_a(ctx: _Context, data: dict[str, Any], name: str, body: str) -> PromptDefinition:
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
        connection = _connection(ctx, cfg, ("model", "configuration"), kind)
    elif config is not None:
        raise ctx.fail(("model", "configuration"), "expected a mapping with type and settings")
    legacy_connection = model_raw.get("connection")
    if connection is None and isinstance(legacy_connection, str):
        connection = ConnectionSpec(
            kind="reference", name=legacy_connection, path=ctx.locator.path, keep_unset_env=True
        )
    options = _options(ctx, params, ("model", "parameters"), _A_OPTIONS, passthrough=True)
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
        tools += _tools(ctx, tools_raw, ("model", "parameters", "tools"))
    if functions_raw is not None:
        tools += _tools(ctx, functions_raw, ("model", "parameters", "functions"))
    metadata: dict[str, Any] = {k: data[k] for k in ("authors", "tags", "version") if k in data}
    return PromptDefinition(
        name=ctx.text(data.get("name"), ("name",)) or name,
        generation="A",
        description=ctx.text(data.get("description"), ("description",)),
        model=model,
        inputs=_properties(ctx, data.get("inputs"), ("inputs",), required_if_no_default=True),
        outputs=_properties(ctx, data.get("outputs"), ("outputs",), output=True),
        tools=tools,
        template=_template(ctx, data.get("template"), ("template",), "jinja2"),
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


def _build_b(ctx: _Context, data: dict[str, Any], name: str, body: str) -> PromptDefinition:
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
            connection = _connection(ctx, cfg, ("model", "connection"), kind)
        model = ModelSpec(
            id=ctx.string(m.get("id"), ("model", "id")),
            provider=provider,
            api=ctx.text(m.get("api") or m.get("apiType"), ("model", "api")) or "chat",
            connection=connection,
            options=_options(
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
        inputs=_properties(ctx, data.get("inputs"), ("inputs",)),
        outputs=_properties(ctx, data.get("outputs"), ("outputs",), output=True),
        tools=_tools(ctx, data.get("tools"), ("tools",)),
        template=_template(ctx, data.get("template"), ("template",), "mustache"),
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


def _build_c(ctx: _Context, data: dict[str, Any], name: str, body: str) -> PromptDefinition:
    model_raw = data.get("model")
    if isinstance(model_raw, str):
        model = ModelSpec(id=model_raw)
    else:
        m = ctx.mapping(model_raw, ("model",))
        connection = None
        if m.get("connection") is not None:
            cfg = ctx.mapping(m["connection"], ("model", "connection"))
            kind = ctx.string(cfg.pop("kind", None), ("model", "connection", "kind"))
            connection = _connection(ctx, cfg, ("model", "connection"), kind)
        options_raw = ctx.mapping(m.get("options"), ("model", "options"))
        extra = ctx.mapping(
            options_raw.pop("additionalProperties", None),
            ("model", "options", "additionalProperties"),
        )
        options = _options(ctx, options_raw, ("model", "options"), _C_OPTIONS, passthrough=False)
        if extra:
            options = ModelOptions(**{**_option_fields(options), "extra": extra})
        model = ModelSpec(
            id=ctx.string(m.get("id"), ("model", "id")),
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
        inputs=_properties(ctx, inputs_raw, inputs_path, shorthand=True),
        outputs=_properties(ctx, outputs_raw, outputs_path, output=True, shorthand=True),
        tools=_tools(ctx, data.get("tools"), ("tools",)),
        template=_template(ctx, data.get("template"), ("template",), "jinja2"),
        body=body,
        metadata=metadata,
    )


# --- shared pieces ------------------------------------------------------------------


def _option_fields(options: ModelOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in ModelOptions.__dataclass_fields__}


def _options(
    ctx: _Context,
    raw: dict[str, Any],
    path: FieldPath,
    names: Mapping[str, str],
    *,
    passthrough: bool,
) -> ModelOptions:
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in raw.items():
        here = (*path, key)
        target = names.get(key)
        if target is None:
            if passthrough:
                extra[key] = value
            continue
        if target in ("temperature", "top_p", "frequency_penalty", "presence_penalty"):
            values[target] = ctx.number(value, here)
        elif target in ("max_output_tokens", "top_k", "seed"):
            values[target] = ctx.integer(value, here)
        elif target == "stop":
            values[target] = ctx.strings(value, here)
        elif target == "allow_multiple_tool_calls":
            values[target] = None if value is None else ctx.boolean(value, here)
        else:
            values[target] = value
    return ModelOptions(**values, extra=extra)


def _connection(
    ctx: _Context, cfg: dict[str, Any], path: FieldPath, kind: str | None
) -> ConnectionSpec:
    endpoint: str | None = None
    api_key: SecretStr | None = None
    name: str | None = None
    options: dict[str, Any] = {}
    for key, value in cfg.items():
        here = (*path, key)
        if key in ("endpoint", "azure_endpoint", "base_url", "baseUrl", "url"):
            endpoint = ctx.string(value, here)
        elif key in ("api_key", "apiKey", "key"):
            text = ctx.string(value, here)
            api_key = SecretStr(text) if text is not None else None
        elif key in ("connection", "name", "reference"):
            name = ctx.string(value, here)
        elif is_secret_key(key) and isinstance(value, str):
            options[key] = SecretStr(value)
        else:
            options[key] = value
    return ConnectionSpec(
        kind=kind,
        endpoint=endpoint,
        api_key=api_key,
        name=name,
        options=options,
        keep_unset_env=ctx.generation == "A",
        path=ctx.locator.path,
        line=ctx.locator.line_of(path),
    )


def _template(
    ctx: _Context, raw: Any, path: FieldPath, default_format: TemplateFormat
) -> TemplateSpec:
    fmt: Any = None
    parser: Any = None
    strict = False
    options: dict[str, Any] = {}
    fmt_path: FieldPath = path
    if isinstance(raw, str):
        fmt = raw
    elif raw is not None:
        spec = ctx.mapping(raw, path)
        fmt = spec.get("format", spec.get("type"))
        fmt_path = (*path, "format" if "format" in spec else "type")
        parser = spec.get("parser")
        strict = ctx.boolean(spec.get("strict"), (*path, "strict"))
        options = ctx.mapping(spec.get("options"), (*path, "options"))
    if isinstance(fmt, Mapping):
        fmt_path = (*fmt_path, "kind")
        fmt = fmt.get("kind")
    if isinstance(parser, Mapping):
        parser = parser.get("kind")
    fmt_name = ctx.string(fmt, fmt_path) or default_format
    normalised = _FORMATS.get(fmt_name.lower())
    if normalised is None:
        raise ctx.fail(
            fmt_path,
            f"the template format {fmt_name!r} is not supported; use jinja2 or mustache",
        )
    parser_name = (ctx.string(parser, (*path, "parser")) or "prompty").lower()
    if parser_name != "prompty":
        raise ctx.fail(
            (*path, "parser"),
            f"the template parser {parser_name!r} is not supported; use prompty",
        )
    return TemplateSpec(format=normalised, parser=parser_name, strict=strict, options=options)


def _properties(
    ctx: _Context,
    raw: Any,
    path: FieldPath,
    *,
    output: bool = False,
    shorthand: bool = False,
    required_if_no_default: bool = False,
    depth: int = 0,
) -> tuple[PropertySpec, ...]:
    if raw is None:
        return ()
    entries: list[tuple[str | None, Any, FieldPath]] = []
    if isinstance(raw, Mapping):
        entries = [(str(k), v, (*path, str(k))) for k, v in raw.items()]
    elif isinstance(raw, list):
        entries = [(None, v, (*path, i)) for i, v in enumerate(raw)]
    else:
        raise ctx.fail(path, f"expected a list or mapping of properties, found {_describe(raw)}")
    out: list[PropertySpec] = []
    seen: set[str] = set()
    for key, value, here in entries:
        prop = _property(
            ctx,
            key,
            value,
            here,
            output=output,
            shorthand=shorthand,
            required_if_no_default=required_if_no_default,
            depth=depth,
        )
        if prop.name in seen:
            raise ctx.fail(here, f"the property {prop.name!r} is declared twice")
        seen.add(prop.name)
        out.append(prop)
    return tuple(out)


def _property(
    ctx: _Context,
    key: str | None,
    value: Any,
    path: FieldPath,
    *,
    output: bool,
    shorthand: bool,
    required_if_no_default: bool,
    depth: int,
) -> PropertySpec:
    if depth > 16:
        raise ctx.fail(path, "properties are nested more than 16 levels deep")
    if not isinstance(value, Mapping):
        if shorthand and key is not None:
            # v2 scalar shorthand: `firstName: Jane` is a string input defaulting to Jane.
            return PropertySpec(name=key, kind="string", default=value)
        raise ctx.fail(
            path,
            f"expected a property (a mapping with a type and default), found {_describe(value)}",
        )
    spec = {str(k): v for k, v in value.items()}
    name = key if key is not None else ctx.string(spec.get("name"), (*path, "name"))
    if not name:
        raise ctx.fail(path, "a property in a list needs a name")
    kind_key = "kind" if "kind" in spec else "type"
    kind_raw = ctx.string(spec.get(kind_key), (*path, kind_key)) or "string"
    kind = _KIND_ALIASES.get(kind_raw.lower())
    if kind is None:
        raise ctx.fail(
            (*path, kind_key),
            f"unknown kind {kind_raw!r}; use one of string, integer, float, boolean, array, "
            f"object, thread, image, file, audio",
        )
    if output and kind == "thread":
        raise ctx.fail((*path, kind_key), "a thread cannot be an output")
    enum_key = "enumValues" if "enumValues" in spec else "enum"
    enum_raw = spec.get(enum_key)
    enum: tuple[Any, ...] | None = None
    if enum_raw is not None:
        if not isinstance(enum_raw, list):
            raise ctx.fail((*path, enum_key), f"expected a list, found {_describe(enum_raw)}")
        enum = tuple(enum_raw)
    default = spec.get("default", MISSING)
    if "required" in spec:
        required = ctx.boolean(spec["required"], (*path, "required"))
    else:
        required = required_if_no_default and default is MISSING
    items = None
    if "items" in spec and spec["items"] is not None:
        items = _property(
            ctx,
            "items",
            spec["items"],
            (*path, "items"),
            output=output,
            shorthand=False,
            required_if_no_default=False,
            depth=depth + 1,
        )
    nested: tuple[PropertySpec, ...] = ()
    if spec.get("properties") is not None:
        nested = _properties(
            ctx, spec["properties"], (*path, "properties"), output=output, depth=depth + 1
        )
    return PropertySpec(
        name=name,
        kind=kind,
        description=ctx.text(spec.get("description"), (*path, "description")),
        required=required,
        default=default,
        enum=enum,
        example=spec.get("example", spec.get("sample", MISSING)),
        items=items,
        properties=nested,
    )


def _tools(ctx: _Context, raw: Any, path: FieldPath) -> tuple[PromptTool, ...]:
    if raw is None:
        return ()
    entries: list[tuple[Any, FieldPath, str | None]]
    if isinstance(raw, list):
        entries = [(v, (*path, i), None) for i, v in enumerate(raw)]
    elif isinstance(raw, Mapping):
        entries = [(v, (*path, str(k)), str(k)) for k, v in raw.items()]
    else:
        raise ctx.fail(path, f"expected a list of tools, found {_describe(raw)}")
    tools = [_tool(ctx, value, here, key) for value, here, key in entries]
    names = [t.name for t in tools]
    for index, tool in enumerate(tools):
        if tool.name in names[:index]:
            raise ctx.fail(entries[index][1], f"the tool {tool.name!r} is declared twice")
    return tuple(tools)


_TOOL_FIELDS = frozenset(
    {
        "name",
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


def _tool(ctx: _Context, raw: Any, path: FieldPath, key: str | None) -> PromptTool:
    spec = ctx.mapping(raw, path)
    if spec.get("type") == "function" and isinstance(spec.get("function"), Mapping):
        # OpenAI format: {type: function, function: {name, description, parameters, strict}}
        path = (*path, "function")
        spec = {"kind": "function", **ctx.mapping(spec["function"], path)}
    name = ctx.string(spec.get("name"), (*path, "name")) or key
    if not name:
        raise ctx.fail(path, "a tool needs a name")
    kind = (ctx.string(spec.get("kind", spec.get("type")), (*path, "kind")) or "function").lower()
    parameters: dict[str, Any] = {"type": "object", "properties": {}}
    if spec.get("parameters") is not None:
        parameters = _parameters(ctx, spec["parameters"], (*path, "parameters"))
    bindings = _bindings(ctx, spec.get("bindings"), (*path, "bindings"))
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
        connection = _connection(ctx, cfg, (*path, "connection"), conn_kind)
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


def _parameters(ctx: _Context, raw: Any, path: FieldPath) -> dict[str, Any]:
    """Tool parameters as JSON Schema. Accepted: a JSON Schema object, or properties as
    a list (`[{name, kind, description, required}]`) or a mapping."""
    if isinstance(raw, Mapping) and (raw.get("type") == "object" or "properties" in raw):
        if "properties" in raw and not isinstance(raw["properties"], Mapping):
            props = _properties(ctx, raw["properties"], (*path, "properties"))
            return object_schema(props)
        return {str(k): v for k, v in raw.items()}
    return object_schema(_properties(ctx, raw, path))


def _bindings(ctx: _Context, raw: Any, path: FieldPath) -> tuple[ToolBinding, ...]:
    if raw is None:
        return ()
    entries: list[tuple[str | None, Any, FieldPath]]
    if isinstance(raw, Mapping):
        entries = [(str(k), v, (*path, str(k))) for k, v in raw.items()]
    elif isinstance(raw, list):
        entries = [(None, v, (*path, i)) for i, v in enumerate(raw)]
    else:
        raise ctx.fail(path, f"expected a list or mapping of bindings, found {_describe(raw)}")
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
