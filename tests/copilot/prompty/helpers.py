"""JSON views of messages and definitions, for comparing with expected files."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from pilothouse.copilot.prompty import ConnectionSpec, ModelOptions, PromptDefinition, PromptTool
from pilothouse.types import ImagePart, Message, TextPart, ToolCallPart, ToolResultPart


def message_json(message: Message) -> dict[str, Any]:
    """`{role, content}` for a message of one text part, else `{role, parts}`."""
    if len(message.parts) == 1 and isinstance(message.parts[0], TextPart):
        return {"role": message.role, "content": message.parts[0].text}
    parts: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            if part.url is not None:
                parts.append({"type": "image", "url": part.url})
            else:
                parts.append({"type": "image", "data": part.data, "media_type": part.media_type})
        elif isinstance(part, ToolCallPart):
            parts.append(
                {"type": "tool_call", "id": part.id, "name": part.name, "arguments": part.arguments}
            )
        elif isinstance(part, ToolResultPart):
            parts.append(
                {
                    "type": "tool_result",
                    "tool_call_id": part.tool_call_id,
                    "name": part.name,
                    "content": part.content,
                }
            )
    return {"role": message.role, "parts": parts}


def options_json(options: ModelOptions) -> dict[str, Any]:
    """The options that are set (not None, not empty)."""
    out: dict[str, Any] = {}
    for f in fields(options):
        value = getattr(options, f.name)
        if value is None or value == () or value == {}:
            continue
        if isinstance(value, tuple):
            value = list(value)
        elif f.name == "extra":
            value = dict(value)
        out[f.name] = value
    return out


def connection_json(connection: ConnectionSpec | None) -> dict[str, Any] | None:
    if connection is None:
        return None
    return {
        "kind": connection.kind,
        "endpoint": connection.endpoint,
        "api_key": connection.api_key.get_secret_value() if connection.api_key else None,
        "name": connection.name,
        "options": {
            k: (v.get_secret_value() if hasattr(v, "get_secret_value") else v)
            for k, v in connection.options.items()
        },
    }


def tool_json(tool: PromptTool) -> dict[str, Any]:
    return {
        "name": tool.name,
        "kind": tool.kind,
        "description": tool.description,
        "parameters": dict(tool.parameters),
        "strict": tool.strict,
        "bindings": [{"parameter": b.parameter, "input": b.input} for b in tool.bindings],
        "server_name": tool.server_name,
        "approval_mode": tool.approval_mode,
        "allowed_tools": list(tool.allowed_tools) if tool.allowed_tools is not None else None,
        "specification": tool.specification,
        "connection": (
            {"kind": tool.connection.kind, "endpoint": tool.connection.endpoint}
            if tool.connection
            else None
        ),
    }


def definition_json(definition: PromptDefinition) -> dict[str, Any]:
    inputs = []
    for prop in definition.inputs:
        item: dict[str, Any] = {"name": prop.name, "kind": prop.kind, "required": prop.required}
        if prop.has_default:
            item["default"] = prop.default
        inputs.append(item)
    return {
        "generation": definition.generation,
        "name": definition.name,
        "description": definition.description,
        "model": {
            "id": definition.model.id,
            "provider": definition.model.provider,
            "api": definition.model.api,
            "options": options_json(definition.model.options),
        },
        "connection": connection_json(definition.model.connection),
        "inputs": inputs,
        "tools": [tool_json(t) for t in definition.tools],
        "template": {
            "format": definition.template.format,
            "parser": definition.template.parser,
            "strict": definition.template.strict,
        },
        "metadata": dict(definition.metadata),
        "output_schema": definition.output_schema,
        "sample": definition.sample,
    }
