"""Pilothouse's neutral `ModelRequest` as a Messages API request body.

System messages become the top-level `system` string; the rest alternate `user` /
`assistant`, merged where one role follows itself. Tool results open a user turn, tool
calls close an assistant turn. An output schema travels as one extra tool (see
`OutputTool`), because the classic Messages API has no JSON-schema response field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pilothouse.errors import BadRequestError
from pilothouse.models.base import dump_json
from pilothouse.models.profiles import ModelProfile
from pilothouse.types import (
    ImagePart,
    Message,
    ModelRequest,
    OutputSchema,
    Part,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)

# Anthropic requires `max_tokens`; this is sent when neither the request nor the
# model's profile (`default_max_tokens` in profiles.toml) names a limit.
DEFAULT_MAX_TOKENS = 4096

_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_DATA_URL = re.compile(r"^data:(?P<media>[\w/+.-]+);base64,(?P<data>.*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class OutputTool:
    """The tool that carries a structured answer."""

    name: str
    wrapped: bool  # the schema was wrapped as {"value": schema}

    def answer(self, arguments: Any) -> str:
        if self.wrapped and isinstance(arguments, dict):
            return dump_json(arguments.get("value"))
        return dump_json(arguments if arguments is not None else {})


def build_payload(
    request: ModelRequest, *, name: str, profile: ModelProfile, model: str, stream: bool
) -> tuple[dict[str, Any], OutputTool | None]:
    """The body for `request` to model `name`, and the output tool where one carries
    the structured answer; `model` is the Pilothouse model id named in errors."""
    payload: dict[str, Any] = {
        "model": name,
        "max_tokens": request.max_output_tokens or profile.default_max_tokens or DEFAULT_MAX_TOKENS,
        "messages": _wire_messages(request.conversation),
    }
    if request.system_text:
        payload["system"] = request.system_text
    if request.temperature is not None:
        payload["temperature"] = request.temperature
    if request.stop:
        payload["stop_sequences"] = list(request.stop)
    output = _tools(request, payload, profile, model)
    if stream:
        payload["stream"] = True
    return payload, output


def _tools(
    request: ModelRequest, payload: dict[str, Any], profile: ModelProfile, model: str
) -> OutputTool | None:
    """Fill `tools` and `tool_choice`; return the output tool where one is used."""
    tools = [_wire_tool(spec) for spec in request.tools]
    names = {spec.name for spec in request.tools}
    choice = request.tool_choice
    if choice not in ("auto", "none") and not tools:
        raise BadRequestError(
            f"tool_choice={choice!r} but the request offers no tools; "
            "add the tool or use tool_choice='auto'",
            model=model,
        )
    if choice not in ("auto", "none", "required") and choice not in names:
        raise BadRequestError(
            f"tool_choice names {choice!r}, which is not among the request's tools "
            f"({', '.join(sorted(names))})",
            model=model,
        )
    output: OutputTool | None = None
    wire_choice: dict[str, Any] | None = None
    if request.output_schema is not None:
        output, spec = _output_tool(request.output_schema, names)
        tools.append(spec)
        if not request.tools or choice == "none":
            wire_choice = {"type": "tool", "name": output.name}
        elif choice in ("auto", "required"):
            wire_choice = {"type": "any"}
        else:
            wire_choice = {"type": "tool", "name": choice}
    elif tools:
        wire_choice = {
            "auto": {"type": "auto"},
            "none": {"type": "none"},
            "required": {"type": "any"},
        }.get(choice, {"type": "tool", "name": choice})
    if not tools:
        return None
    payload["tools"] = tools
    assert wire_choice is not None
    single = not (request.parallel_tool_calls and profile.parallel_tools)
    forced_output = output is not None and wire_choice.get("name") == output.name
    if wire_choice["type"] != "none" and (single or forced_output):
        # one structured answer; or the caller asked for one call at a time
        wire_choice["disable_parallel_tool_use"] = True
    payload["tool_choice"] = wire_choice
    return output


def _wire_messages(conversation: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Anthropic turns: alternating roles, tool results in user turns, first."""
    turns: list[dict[str, Any]] = []
    for message in conversation:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = [block for part in message.parts if (block := _wire_part(part)) is not None]
        if not blocks:
            continue  # Anthropic rejects empty turns
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if turns and turns[-1]["role"] == "assistant":  # a prefill, continued by the model
        last_block = turns[-1]["content"][-1]
        if last_block["type"] == "text":  # which must not end with whitespace
            last_block["text"] = last_block["text"].rstrip() or last_block["text"]
    for turn in turns:
        # tool results must open a user turn; tool calls close an assistant turn
        first = "tool_result" if turn["role"] == "user" else None
        last = "tool_use" if turn["role"] == "assistant" else None
        turn["content"].sort(
            key=lambda b: 0 if b["type"] == first else 2 if b["type"] == last else 1
        )
    return turns


def _wire_part(part: Part) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ImagePart):
        return {"type": "image", "source": _image_source(part)}
    if isinstance(part, ToolCallPart):
        return {
            "type": "tool_use",
            "id": _wire_id(part.id),
            "name": part.name,
            "input": dict(part.arguments),
        }
    if isinstance(part, ToolResultPart):
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": _wire_id(part.tool_call_id)}
        if part.content:
            block["content"] = part.content
        if part.is_error:
            block["is_error"] = True
        return block
    return None


def _image_source(image: ImagePart) -> dict[str, Any]:
    if image.data is not None:
        return {"type": "base64", "media_type": image.media_type, "data": image.data}
    url = image.url or ""
    match = _DATA_URL.match(url)
    if match:
        return {"type": "base64", "media_type": match["media"], "data": match["data"]}
    return {"type": "url", "url": url}


def _wire_id(call_id: str) -> str:
    """Anthropic tool ids must match ^[a-zA-Z0-9_-]+$; ids from other vendors may not."""
    return _NAME_CHARS.sub("_", call_id) or "toolu_unnamed"


def _wire_tool(spec: ToolSpec) -> dict[str, Any]:
    tool: dict[str, Any] = {"name": spec.name, "input_schema": spec.parameters}
    if spec.description:
        tool["description"] = spec.description
    return tool


def _output_tool(schema: OutputSchema, taken: set[str]) -> tuple[OutputTool, dict[str, Any]]:
    name = _NAME_CHARS.sub("_", schema.name)[:64] or "output"
    while name in taken:
        name = f"{name[:57]}_answer"
    wrapped = schema.schema.get("type") != "object"
    input_schema = (
        {"type": "object", "properties": {"value": schema.schema}, "required": ["value"]}
        if wrapped
        else schema.schema
    )
    spec = {
        "name": name,
        "description": "Give the final answer by calling this tool; its input is the answer.",
        "input_schema": input_schema,
    }
    return OutputTool(name, wrapped), spec
