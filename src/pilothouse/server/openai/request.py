"""The OpenAI Chat Completions wire format, server side: reading a request body into
neutral types, for raw models (`to_model_request`) and copilots (`to_messages`, the
same parse; copilot_api adds what a copilot refuses).

Validation is strict on what Pilothouse reads (types of known fields, roles, tool
calls paired with results) and cheap (no schema library on the hot path). Every
problem is an `HTTPError(400)` naming the parameter, as OpenAI's API does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from pilothouse.server.asgi import HTTPError
from pilothouse.types import (
    ImagePart,
    Message,
    ModelRequest,
    OutputSchema,
    Part,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    parse_tool_arguments,
)

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
EXTENSION = "pilothouse"


def bad(message: str, param: str | None = None, code: str = "invalid_request") -> HTTPError:
    return HTTPError(400, message, param=param, code=code, type="invalid_request_error")


# --- the request body ----------------------------------------------------------------


def parse_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body, checked for the fields every request needs:
    `model` (string) and `messages` (non-empty array of objects with a known role)."""
    if not body:
        raise bad("the request body is empty; send a JSON object", code="invalid_json")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad(f"the request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise bad("the request body must be a JSON object", code="invalid_json")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise bad("'model' is required and must be a non-empty string", "model")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("'messages' is required and must be a non-empty array", "messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad(f"messages[{index}] must be an object", f"messages[{index}]")
        if message.get("role") not in ROLES:
            raise bad(
                f"messages[{index}].role must be one of system, developer, user, assistant, "
                f"tool; got {message.get('role')!r}",
                f"messages[{index}].role",
            )
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad("'stream' must be a boolean", "stream")
    tools = data.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise bad("'tools' must be an array", "tools")
    extension = data.get(EXTENSION)
    if extension is not None and not isinstance(extension, dict):
        raise bad(f"'{EXTENSION}' must be an object", EXTENSION)
    return data


def wants_usage(data: Mapping[str, Any]) -> bool:
    options = data.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict):
        raise bad("'stream_options' must be an object", "stream_options")
    return bool(options.get("include_usage"))


def wants_early_progress(data: Mapping[str, Any]) -> bool:
    """`{"pilothouse": {"progress": true}}`: send the `retrieved` chunk as soon as
    retrieval ends. It starts the response, so a run that then fails before its first
    word ends with an error event in a 200 stream rather than an HTTP error status;
    clients that show progress opt in, OpenAI clients keep the usual status codes."""
    extension = data.get(EXTENSION) or {}
    progress = extension.get("progress", False)
    if not isinstance(progress, bool):
        raise bad("pilothouse.progress must be a boolean", f"{EXTENSION}.progress")
    return progress


def single_choice(data: Mapping[str, Any]) -> None:
    """Pilothouse answers with one choice: `n` other than 1 is refused."""
    n = data.get("n")
    if n is not None and n != 1:
        raise bad("only n=1 is supported", "n")


def to_model_request(data: Mapping[str, Any]) -> ModelRequest:
    """The neutral request for a checked body (see `parse_body`)."""
    single_choice(data)
    messages = to_messages(data["messages"])
    tools = _tools(data.get("tools"))
    return ModelRequest(
        messages=tuple(messages),
        tools=tools,
        tool_choice=_tool_choice(data.get("tool_choice"), tools),
        parallel_tool_calls=_bool(data, "parallel_tool_calls", True),
        output_schema=_output_schema(data.get("response_format")),
        temperature=_number(data, "temperature", 0, 2),
        max_output_tokens=_max_tokens(data),
        stop=_stop(data.get("stop")),
        seed=_int(data, "seed"),
    )


def to_messages(raw: list[dict[str, Any]]) -> list[Message]:
    """OpenAI messages as neutral messages; consecutive tool results become one tool
    message, each result named after the call it answers."""
    out: list[Message] = []
    names: dict[str, str] = {}
    for index, item in enumerate(raw):
        where = f"messages[{index}]"
        role = item["role"]
        if role in ("system", "developer"):
            out.append(Message("system", (TextPart(_text(item.get("content"), where)),)))
        elif role == "user":
            out.append(Message("user", _user_parts(item.get("content"), where)))
        elif role == "assistant":
            message = _assistant(item, where)
            for call in message.tool_calls:
                names[call.id] = call.name
            out.append(message)
        elif role == "tool":
            call_id = item.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise bad(f"{where}.tool_call_id is required for a tool message", where)
            if call_id not in names:
                raise bad(
                    f"{where} answers tool call {call_id!r}, which no earlier assistant "
                    "message made",
                    f"{where}.tool_call_id",
                )
            result = ToolResultPart(call_id, names[call_id], _text(item.get("content"), where))
            if out and out[-1].role == "tool":
                out[-1] = Message("tool", (*out[-1].parts, result))
            else:
                out.append(Message.tool(result))
        else:
            raise bad(f"{where}: the legacy 'function' role is not supported; use tools", where)
    return out


def _text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise bad(f"{where}.content[{i}] must be a text part here", f"{where}.content")
            text = part.get("text")
            if not isinstance(text, str):
                raise bad(f"{where}.content[{i}].text must be a string", f"{where}.content")
            texts.append(text)
        return "".join(texts)
    raise bad(f"{where}.content must be a string or an array of parts", f"{where}.content")


def _user_parts(content: Any, where: str) -> tuple[Part, ...]:
    if isinstance(content, str):
        return (TextPart(content),)
    if not isinstance(content, list) or not content:
        raise bad(f"{where}.content must be a string or a non-empty array", f"{where}.content")
    parts: list[Part] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append(TextPart(part["text"]))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else None
            if not isinstance(url, str) or not url:
                raise bad(f"{where}.content[{i}].image_url.url must be a string", where)
            parts.append(_image(url, f"{where}.content[{i}]"))
        else:
            raise bad(
                f"{where}.content[{i}] must be a text or image_url part", f"{where}.content[{i}]"
            )
    return tuple(parts)


def _image(url: str, where: str) -> ImagePart:
    if url.startswith("data:"):
        head, sep, data = url.partition(",")
        if not sep or ";base64" not in head:
            raise bad(f"{where}: a data URL must be base64 (data:image/png;base64,...)", where)
        return ImagePart(data=data, media_type=head[5:].split(";")[0] or "image/png")
    return ImagePart(url=url)


def _assistant(item: Mapping[str, Any], where: str) -> Message:
    parts: list[Part] = []
    text = _text(item.get("content"), where)
    if text:
        parts.append(TextPart(text))
    calls = item.get("tool_calls")
    if calls is None:
        return Message("assistant", tuple(parts))
    if not isinstance(calls, list):
        raise bad(f"{where}.tool_calls must be an array", f"{where}.tool_calls")
    for i, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        call_id = call.get("id") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call_id, str):
            raise bad(f"{where}.tool_calls[{i}] needs an id and a function", f"{where}.tool_calls")
        name, arguments = function.get("name"), function.get("arguments", "")
        if not isinstance(name, str) or not isinstance(arguments, str):
            raise bad(
                f"{where}.tool_calls[{i}].function needs a name and arguments (a JSON string)",
                f"{where}.tool_calls",
            )
        args, raw = parse_tool_arguments(arguments)
        parts.append(ToolCallPart(call_id, name, args, raw))
    return Message("assistant", tuple(parts))


def _tools(raw: Any) -> tuple[ToolSpec, ...]:
    if not raw:
        return ()
    specs: list[ToolSpec] = []
    for i, tool in enumerate(raw):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not function:
            raise bad(f"tools[{i}] must be {{'type': 'function', 'function': {{...}}}}", "tools")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise bad(f"tools[{i}].function.name must be a non-empty string", "tools")
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(parameters, dict):
            raise bad(f"tools[{i}].function.parameters must be a JSON Schema object", "tools")
        description = function.get("description") or ""
        if not isinstance(description, str):
            raise bad(f"tools[{i}].function.description must be a string", "tools")
        specs.append(ToolSpec(name, description, parameters))
    return tuple(specs)


def _tool_choice(raw: Any, tools: tuple[ToolSpec, ...]) -> ToolChoice:
    if raw is None:
        return "auto"
    if raw in ("auto", "none", "required"):
        return str(raw)
    if isinstance(raw, dict) and raw.get("type") == "function":
        function = raw.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and any(t.name == name for t in tools):
            return name
        raise bad(f"tool_choice names a tool that is not in 'tools': {name!r}", "tool_choice")
    raise bad("tool_choice must be auto, none, required or a function object", "tool_choice")


def _output_schema(raw: Any) -> OutputSchema | None:
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return OutputSchema({"type": "object"}, name="json_object", strict=False)
    if kind == "json_schema":
        spec = raw.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(spec, dict) or not isinstance(schema, dict):
            raise bad("response_format.json_schema.schema must be an object", "response_format")
        name = spec.get("name") or "output"
        if not isinstance(name, str):
            raise bad("response_format.json_schema.name must be a string", "response_format")
        return OutputSchema(schema, name=name, strict=bool(spec.get("strict", True)))
    raise bad("response_format.type must be text, json_object or json_schema", "response_format")


def _bool(data: Mapping[str, Any], name: str, default: bool) -> bool:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad(f"'{name}' must be a boolean", name)
    return value


def _number(data: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise bad(f"'{name}' must be a number from {low:g} to {high:g}", name)
    return float(value)


def _int(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"'{name}' must be an integer", name)
    return value


def _max_tokens(data: Mapping[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = _int(data, name)
        if value is not None:
            if value < 1:
                raise bad(f"'{name}' must be at least 1", name)
            return value
    return None


def _stop(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list) and all(isinstance(s, str) for s in raw) and len(raw) <= 4:
        return tuple(raw)
    raise bad("'stop' must be a string or an array of up to 4 strings", "stop")
