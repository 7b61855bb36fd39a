"""What a copilot's requests carry when its instructions are a Prompty: the file's
`model:` options, `tools` and `outputs`, merged with copilot.yaml.

Precedence, field by field: copilot.yaml (`model.options`, `tools`) wins where it
sets a field; then the instructions Prompty; then Pilothouse's defaults
(`limits.max_output_tokens`). The model itself is always copilot.yaml's (`model.primary`,
else the data directory's default): the file's model id and connection are shown, not
used. Options a Pilothouse request has no field for (`top_p`, penalties, provider
pass-through) are listed as not applied, never dropped silently.

    settings = effective_settings(definition, prompty)
    settings.request_fields()    # temperature, max_output_tokens, stop, seed, output_schema
    settings.fields              # every field with its value and where it came from
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pilothouse.copilot.definition import CopilotDefinition
from pilothouse.copilot.prompty import PromptTool, Prompty, PromptyError
from pilothouse.copilot.prompty.references import parse_reference
from pilothouse.types import OutputSchema

COPILOT_YAML = "copilot.yaml"
DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class Setting:
    """One effective field: its value and where it came from."""

    value: Any
    source: str
    note: str = ""


@dataclass(frozen=True)
class PromptSettings:
    fields: Mapping[str, Setting]
    """`temperature`, `max_output_tokens`, `stop`, `seed`, `output_schema`, `model`."""
    not_applied: tuple[str, ...] = ()
    """Options the Prompty sets that a Pilothouse request cannot carry, with why."""
    tool_entries: tuple[dict[str, Any], ...] = ()
    """The Prompty's MCP and OpenAPI tools as `tools:` entries (loaded beside copilot.yaml's)."""
    function_tools: tuple[str, ...] = ()
    """The Prompty's function tools (each implemented by a copilot.yaml tool of that name)."""
    unset_env: tuple[str, ...] = ()
    """`${env:}` names in the Prompty's connections that are not set (never used here)."""
    prompty_file: str | None = None

    def value(self, name: str) -> Any:
        setting = self.fields.get(name)
        return None if setting is None else setting.value

    def request_fields(self) -> dict[str, Any]:
        """Keyword arguments for `ModelRequest`."""
        return {
            "temperature": self.value("temperature"),
            "max_output_tokens": self.value("max_output_tokens"),
            "stop": tuple(self.value("stop") or ()),
            "seed": self.value("seed"),
            "output_schema": self.value("output_schema"),
        }


def effective_settings(
    definition: CopilotDefinition,
    prompty: Prompty | None,
    environ: Mapping[str, str] | None = None,
) -> PromptSettings:
    """copilot.yaml merged with the instructions Prompty (None: inline instructions)."""
    options = definition.model.options
    given = options.model_fields_set
    source = definition.instructions_file or "instructions"
    prompt_options = prompty.definition.model.options if prompty is not None else None
    fields: dict[str, Setting] = {}

    def pick(name: str, ours: Any, theirs: Any, fallback: Any = None) -> None:
        if name in given:
            fields[name] = Setting(ours, COPILOT_YAML)
        elif theirs is not None and theirs != ():
            fields[name] = Setting(theirs, source)
        elif fallback is not None:
            fields[name] = Setting(fallback, f"{COPILOT_YAML} limits.max_output_tokens")
        else:
            fields[name] = Setting(ours if ours not in ([], ()) else None, DEFAULT)

    po = prompt_options
    pick("temperature", options.temperature, po.temperature if po else None)
    pick(
        "max_output_tokens",
        options.max_output_tokens,
        po.max_output_tokens if po else None,
        definition.limits.max_output_tokens,
    )
    pick("stop", tuple(options.stop), po.stop if po else None)
    pick("seed", options.seed, po.seed if po else None)
    schema = prompty_output_schema(prompty)
    fields["output_schema"] = Setting(schema, source) if schema else Setting(None, DEFAULT)
    fields["model"] = Setting(
        definition.model.primary or "(the data directory's default model)",
        COPILOT_YAML if definition.model.primary else DEFAULT,
        note=_model_note(prompty),
    )
    if prompty is None:
        return PromptSettings(fields)
    return PromptSettings(
        fields,
        not_applied=_not_applied(prompty),
        tool_entries=tuple(tool_entry(prompty, i, t) for i, t in _other_tools(prompty)),
        function_tools=tuple(t.name for t in prompty.definition.tools if t.kind == "function"),
        unset_env=_unset_env(prompty, environ or {}),
        prompty_file=source,
    )


def prompty_output_schema(prompty: Prompty | None) -> OutputSchema | None:
    """The structured output a Prompty asks for: its outputs as a strict schema, or a JSON
    object for `response_format: json_object`; None otherwise."""
    if prompty is None:
        return None
    structured = prompty.definition.structured_output()
    if structured is not None:
        return structured
    response_format = prompty.definition.model.options.response_format
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_object":
        return OutputSchema({"type": "object"}, name="json_object", strict=False)
    return None


def _model_note(prompty: Prompty | None) -> str:
    if prompty is None or not prompty.definition.model.id:
        return ""
    model = prompty.definition.model
    named = f"{model.provider}:{model.id}" if model.provider else model.id
    return f"the Prompty names {named}; copilot.yaml's model policy chooses the model"


_NOT_IN_REQUESTS = ("top_p", "top_k", "frequency_penalty", "presence_penalty")


def _not_applied(prompty: Prompty) -> tuple[str, ...]:
    options = prompty.definition.model.options
    out = [
        f"{name}: Pilothouse requests have no field for it"
        for name in _NOT_IN_REQUESTS
        if getattr(options, name) is not None
    ]
    if options.tool_choice is not None:
        out.append("tool_choice: the runtime chooses (auto, then none past the step limit)")
    if options.allow_multiple_tool_calls is not None:
        out.append("allow_multiple_tool_calls: the runtime runs every call the model makes")
    if options.response_format is not None and not _is_json_object(options.response_format):
        out.append("response_format: only json_object (and outputs:) are applied")
    out += [f"{key}: a provider option passed through by Prompty runtimes" for key in options.extra]
    return tuple(out)


def _is_json_object(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("type") == "json_object"


def _other_tools(prompty: Prompty) -> list[tuple[int, PromptTool]]:
    return [(i, t) for i, t in enumerate(prompty.definition.tools) if t.kind != "function"]


def tool_entry(prompty: Prompty, index: int, tool: PromptTool) -> dict[str, Any]:
    """A Prompty MCP or OpenAPI tool as a copilot.yaml `tools:` entry; any other kind is
    refused with the file, line and field."""
    locator = prompty.document.locator
    here = tool_path(prompty, index)
    connection = tool.connection
    if tool.kind == "mcp":
        if connection is None or not connection.endpoint:
            raise locator.error(
                (*here, "connection"),
                "an MCP tool needs connection.endpoint (the server's URL); Pilothouse starts "
                "no program for a Prompty (declare stdio servers in copilot.yaml tools)",
            )
        entry: dict[str, Any] = {"mcp": connection.endpoint}
        if tool.allowed_tools is not None:
            entry["allow_tools"] = list(tool.allowed_tools)
        headers = connection.options.get("headers")
        if isinstance(headers, Mapping):
            entry["headers"] = {str(k): _raw(v) for k, v in headers.items()}
        approval = _approval(tool.approval_mode)
        if approval is not None:
            entry["approval"] = {"*": approval}
        return entry
    if tool.kind == "openapi":
        spec = _specification(prompty, index, tool)
        entry = {"openapi": spec}
        if connection is not None and connection.endpoint:
            entry["base_url"] = connection.endpoint
        if connection is not None and connection.api_key is not None:
            entry["auth"] = {"type": "bearer", "token": connection.api_key.get_secret_value()}
        return entry
    raise locator.error(
        (*here, "kind"),
        f"the tool {tool.name!r} is of kind {tool.kind!r}, which Pilothouse cannot run; "
        f"use a function tool implemented in copilot.yaml tools, an MCP server or an "
        f"OpenAPI document (docs/tools.md)",
    )


def tool_path(prompty: Prompty, index: int) -> tuple[str | int, ...]:
    """Where tool `index` is written: `tools[i]`, or A's `model.parameters.tools[i]`."""
    if "tools" in prompty.document.front_matter:
        return ("tools", index)
    return ("model", "parameters", "tools", index)


def _specification(prompty: Prompty, index: int, tool: PromptTool) -> str:
    raw_tools = prompty.document.front_matter.get("tools")
    raw: Any = None
    if (
        isinstance(raw_tools, list)
        and index < len(raw_tools)
        and isinstance(raw_tools[index], dict)
    ):
        raw = raw_tools[index].get("specification")
    ref = parse_reference(raw)
    if ref is not None and ref[0] == "file":
        return str(prompty.base_dir / ref[1].strip())
    if isinstance(tool.specification, str) and tool.specification.strip():
        return tool.specification.strip()
    raise prompty.document.locator.error(
        (*tool_path(prompty, index), "specification"),
        "an OpenAPI tool's specification must be a URL or ${file:relative/path}",
    )


def _approval(mode: Any) -> bool | None:
    if isinstance(mode, Mapping):
        mode = mode.get("kind")
    if not isinstance(mode, str):
        return None
    return {"always": True, "never": False}.get(mode.lower())


def _raw(value: Any) -> Any:
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value


_ENV = re.compile(r"^\$\{env:([A-Za-z_][A-Za-z0-9_]*)(:[^}]*)?\}$")


def _unset_env(prompty: Prompty, environ: Mapping[str, str]) -> tuple[str, ...]:
    """Unset variables the file's connections name (they stay unresolved in a copilot)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        value = _raw(value)
        if isinstance(value, str):
            match = _ENV.match(value.strip())
            if match and match[2] is None and match[1] not in environ:
                found.append(match[1])
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    connections = [prompty.definition.model.connection]
    connections += [t.connection for t in prompty.definition.tools]
    for connection in connections:
        if connection is not None:
            walk([connection.endpoint, connection.api_key, connection.name])
            walk(connection.options)
    return tuple(dict.fromkeys(found))


def missing_functions(settings: PromptSettings, tool_names: list[str]) -> list[str]:
    """The Prompty's function tools that no copilot.yaml tool implements."""
    return [name for name in settings.function_tools if name not in tool_names]


def function_tool_error(prompty: Prompty, name: str) -> PromptyError:
    index = next(i for i, t in enumerate(prompty.definition.tools) if t.name == name)
    return prompty.document.locator.error(
        tool_path(prompty, index),
        f"the function tool {name!r} has no implementation: add a tool named {name!r} to "
        f"copilot.yaml tools (a Python function, an OpenAPI operation, an MCP tool)",
    )
