"""The conversation rewritten for a model without tool roles: earlier tool calls
become the assistant's JSON, and tool results become user messages inside clearly
marked `<tool_result>` blocks."""

from __future__ import annotations

import json

from pilothouse.types import Message, Part, TextPart, ToolCallPart, ToolResultPart


def render_tool_call_json(calls: list[ToolCallPart]) -> str:
    """The JSON an emulated model writes to call `calls` (used to render history)."""
    return json.dumps(
        {"tool_calls": [{"name": c.name, "arguments": c.arguments} for c in calls]},
        ensure_ascii=False,
    )


def render_tool_result(result: ToolResultPart) -> str:
    """A tool result as text, for a model that has no tool role."""
    error = ' error="true"' if result.is_error else ""
    return (
        f'<tool_result name="{result.name}" call_id="{result.tool_call_id}"{error}>\n'
        f"{result.content}\n"
        "</tool_result>"
    )


def _render_message(message: Message) -> Message:
    if message.role == "tool":
        text = "\n\n".join(render_tool_result(r) for r in message.tool_results)
        return Message("user", (TextPart(text),))
    if message.role == "assistant" and message.tool_calls:
        pieces = [message.text] if message.text else []
        pieces.append(render_tool_call_json(message.tool_calls))
        return Message("assistant", (TextPart("\n".join(pieces)),))
    if any(isinstance(p, ToolResultPart) for p in message.parts):  # stray results
        parts: list[Part] = [
            TextPart(render_tool_result(p)) if isinstance(p, ToolResultPart) else p
            for p in message.parts
        ]
        return Message(message.role, tuple(parts))
    return message


def _merge_adjacent_users(messages: list[Message]) -> list[Message]:
    """Tool results rendered as user text may sit next to a user message; chat
    templates expect turns to alternate, so adjacent user messages become one."""
    merged: list[Message] = []
    for message in messages:
        if merged and message.role == "user" and merged[-1].role == "user":
            previous = merged[-1]
            glue: tuple[Part, ...] = (TextPart("\n\n"),)
            merged[-1] = Message("user", previous.parts + glue + message.parts)
        else:
            merged.append(message)
    return merged


def render_history(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    """The conversation without tool roles or tool parts."""
    rendered = [_render_message(m) for m in messages]
    return tuple(_merge_adjacent_users(rendered))
