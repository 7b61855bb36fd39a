"""A Responses API request (`POST /v1/responses`), read into what the rest of the
server speaks: Chat Completions messages and options.

- `input`: a string (one user message) or items: messages (`role` user, assistant,
  system, developer; `content` a string or `input_text` / `output_text` /
  `input_image` parts), `function_call` and `function_call_output` items (reasoning
  items are skipped: no model here reads them back).
- `instructions`: a system message in front, for this request only (not carried on by
  `previous_response_id`, as the API documents).
- `tools` (`type: function`), `tool_choice`, `text.format` (text, json_object,
  json_schema), `temperature`, `top_p`, `max_output_tokens`, `parallel_tool_calls`,
  `previous_response_id`, `store` (default true), `stream`, `metadata`, `user` (the
  end user, as on chat: a conversation the client keeps is told apart by it).
Anything else the API defines but Pilothouse does not do (built-in tools such as web
search, background mode) is refused by name rather than ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pilothouse.server.openai.request import EXTENSION, bad

_IGNORED_ITEMS = frozenset({"reasoning"})
_UNSUPPORTED = ("background", "conversation", "prompt")


@dataclass
class ResponsesRequest:
    model: str
    messages: list[dict[str, Any]]
    """The input as Chat Completions messages (without the instructions)."""
    echo: dict[str, Any]
    """What the response repeats of the request (instructions, tools, ...)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Chat Completions options: tools, tool_choice, response_format, temperature, ..."""
    instructions: str | None = None
    previous_response_id: str | None = None
    store: bool = True
    stream: bool = False
    extension: dict[str, Any] = field(default_factory=dict)
    user: str | None = None
    """OpenAI's end-user id (`user`), as on /v1/chat/completions."""


def parse_request(data: dict[str, Any]) -> ResponsesRequest:
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise bad("'model' is required and must be a non-empty string", "model")
    for name in _UNSUPPORTED:
        if data.get(name) not in (None, False):
            raise bad(f"'{name}' is not supported by this server", name)
    instructions = _optional(data, "instructions", str)
    previous = _optional(data, "previous_response_id", str)
    store = _optional(data, "store", bool)
    stream = _optional(data, "stream", bool)
    extension = _optional(data, EXTENSION, dict)
    user = _optional(data, "user", str)
    tools = _tools(data.get("tools"))
    options: dict[str, Any] = {}
    if tools:
        options["tools"] = [_chat_tool(t) for t in tools]
    if data.get("tool_choice") is not None:
        options["tool_choice"] = _tool_choice(data["tool_choice"])
    fmt = _format(data.get("text"))
    if fmt is not None:
        options["response_format"] = fmt
    for name, target in (
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("max_output_tokens", "max_tokens"),
        ("parallel_tool_calls", "parallel_tool_calls"),
    ):
        if data.get(name) is not None:
            options[target] = data[name]
    echo = {
        "instructions": instructions,
        "tools": tools,
        "tool_choice": data.get("tool_choice") or "auto",
        "text": data.get("text") or {"format": {"type": "text"}},
        "temperature": data.get("temperature"),
        "top_p": data.get("top_p"),
        "max_output_tokens": data.get("max_output_tokens"),
        "parallel_tool_calls": data.get("parallel_tool_calls", True),
        "previous_response_id": previous,
        "store": store is not False,
        "metadata": _optional(data, "metadata", dict) or {},
        "user": user,
    }
    return ResponsesRequest(
        model=model,
        messages=input_messages(data.get("input")),
        echo=echo,
        options=options,
        instructions=instructions,
        previous_response_id=previous,
        store=store is not False,
        stream=stream is True,
        extension=extension or {},
        user=user,
    )


def _optional(data: dict[str, Any], name: str, kind: type) -> Any:
    value = data.get(name)
    if value is not None and not isinstance(value, kind):
        raise bad(f"'{name}' must be {'an' if kind is dict else 'a'} {kind.__name__}", name)
    return value


# --- input ---------------------------------------------------------------------------


def input_messages(raw: Any) -> list[dict[str, Any]]:
    """The `input` as Chat Completions messages: function calls join the assistant
    message before them, function outputs become tool messages."""
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    if not isinstance(raw, list) or not raw:
        raise bad("'input' must be a string or a non-empty array of items", "input")
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise bad(f"{where} must be an object", where)
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, where))
        elif kind == "function_call":
            call = {
                "id": _string(item, "call_id", where),
                "type": "function",
                "function": {
                    "name": _string(item, "name", where),
                    "arguments": _string(item, "arguments", where),
                },
            }
            last = messages[-1] if messages else None
            if last is None or last["role"] != "assistant":
                last = {"role": "assistant", "content": None}
                messages.append(last)
            last.setdefault("tool_calls", []).append(call)
        elif kind == "function_call_output":
            output = item.get("output")
            if isinstance(output, list):
                output = "".join(p.get("text", "") for p in output if isinstance(p, dict))
            if not isinstance(output, str):
                raise bad(f"{where}.output must be a string", f"{where}.output")
            messages.append(
                {"role": "tool", "tool_call_id": _string(item, "call_id", where), "content": output}
            )
        elif kind not in _IGNORED_ITEMS:
            raise bad(
                f"{where}.type {kind!r} is not supported here (message, function_call, "
                "function_call_output)",
                f"{where}.type",
            )
    if not messages:
        raise bad("'input' has no message", "input")
    return messages


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise bad(
            f"{where}.role must be user, assistant, system or developer; got {role!r}",
            f"{where}.role",
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise bad(f"{where}.content must be a string or an array", f"{where}.content")
    parts: list[dict[str, Any]] = []
    for n, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "refusal":
            parts.append({"type": "text", "text": str(part.get("refusal", ""))})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            parts.append({"type": "image_url", "image_url": {"url": part["image_url"]}})
        else:
            raise bad(
                f"{where}.content[{n}]: parts of type input_text, output_text or input_image "
                f"(with image_url) are supported; got {kind!r}",
                f"{where}.content[{n}]",
            )
    if role != "user" or all(p["type"] == "text" for p in parts):
        return {"role": role, "content": "".join(p.get("text", "") for p in parts)}
    return {"role": role, "content": parts}


def _string(item: dict[str, Any], name: str, where: str) -> str:
    value = item.get(name)
    if not isinstance(value, str):
        raise bad(f"{where}.{name} must be a string", f"{where}.{name}")
    return value


# --- tools and format ----------------------------------------------------------------


def _tools(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad("'tools' must be an array", "tools")
    for index, tool in enumerate(raw):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise bad(
                f"tools[{index}]: only function tools are supported here, not {kind!r}",
                f"tools[{index}]",
            )
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise bad(f"tools[{index}].name must be a non-empty string", f"tools[{index}].name")
    return list(raw)


def _chat_tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = {"name": tool["name"], "parameters": tool.get("parameters") or {"type": "object"}}
    if tool.get("description"):
        function["description"] = tool["description"]
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tool_choice(raw: Any) -> Any:
    if raw in ("auto", "none", "required"):
        return raw
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("name"), str):
        return {"type": "function", "function": {"name": raw["name"]}}
    raise bad("'tool_choice' must be auto, none, required or {type: function, name}", "tool_choice")


def _format(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    fmt = raw.get("format") if isinstance(raw, dict) else None
    if fmt is None or fmt == {"type": "text"}:
        return None
    if not isinstance(fmt, dict):
        raise bad("'text.format' must be an object", "text.format")
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise bad("'text.format.type' must be text, json_object or json_schema", "text.format.type")
