"""The Responses API wire format, server side: a `response` object and, for streams,
its documented server-sent events, built from text and tool-call deltas.

Events, in order: `response.created`, `response.in_progress`; per output item
`response.output_item.added`, then for a message `response.content_part.added`,
`response.output_text.delta`..., `response.output_text.done`,
`response.content_part.done`, and for a function call
`response.function_call_arguments.delta`..., `response.function_call_arguments.done`;
`response.output_item.done`; finally `response.completed` (or `response.incomplete`,
`response.failed`) with the whole response. Every event has a `sequence_number`.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from pilothouse.types import Usage


def response_id() -> str:
    return "resp_" + secrets.token_hex(16)


def _item_id(kind: str) -> str:
    return f"{kind}_" + secrets.token_hex(12)


def usage_object(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


@dataclass
class _Call:
    item_id: str
    call_id: str
    name: str
    arguments: str = ""


@dataclass
class ResponseBuilder:
    """Accumulates one response; each method returns the SSE bytes of the events it
    caused (ignored for JSON answers)."""

    model: str
    request: dict[str, Any]
    """What the response echoes of the request: instructions, tools, tool_choice, ..."""
    id: str = field(default_factory=response_id)
    created_at: int = field(default_factory=lambda: int(time.time()))
    extra: dict[str, Any] = field(default_factory=dict)
    """More top-level fields for the final response (the `pilothouse` extension)."""
    _output: list[dict[str, Any]] = field(default_factory=list)
    _text: list[str] | None = None
    _message_id: str = ""
    _calls: dict[int, _Call] = field(default_factory=dict)
    _open_call: int | None = None
    _sequence: int = 0
    final: dict[str, Any] = field(default_factory=dict)
    """The whole response once `finish` was called."""

    # --- events ------------------------------------------------------------------

    def _event(self, kind: str, **fields: Any) -> bytes:
        body = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"

    def start(self) -> bytes:
        snapshot = self.response("in_progress")
        return self._event("response.created", response=snapshot) + self._event(
            "response.in_progress", response=snapshot
        )

    def text(self, delta: str) -> bytes:
        out = self._close_call()
        if self._text is None:
            self._text = []
            self._message_id = _item_id("msg")
            index = len(self._output)
            out += self._event(
                "response.output_item.added", output_index=index, item=self._message("in_progress")
            )
            out += self._event(
                "response.content_part.added",
                item_id=self._message_id,
                output_index=index,
                content_index=0,
                part=_text_part(""),
            )
        self._text.append(delta)
        return out + self._event(
            "response.output_text.delta",
            item_id=self._message_id,
            output_index=len(self._output),
            content_index=0,
            delta=delta,
            logprobs=[],
        )

    def tool_call(self, index: int, call_id: str | None, name: str | None, delta: str) -> bytes:
        """A piece of the tool call `index` (as numbered by the model's stream)."""
        out = self._close_message()
        call = self._calls.get(index)
        if call is None:
            out += self._close_call()
            call = _Call(_item_id("fc"), call_id or f"call_{secrets.token_hex(8)}", name or "")
            self._calls[index] = call
            self._open_call = index
            out += self._event(
                "response.output_item.added",
                output_index=len(self._output),
                item=_call_item(call, "in_progress"),
            )
        elif name and not call.name:
            call.name = name
        if not delta:
            return out
        call.arguments += delta
        return out + self._event(
            "response.function_call_arguments.delta",
            item_id=call.item_id,
            output_index=len(self._output),
            delta=delta,
        )

    def finish(
        self,
        usage: Usage,
        *,
        incomplete: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> bytes:
        """Close what is open and end with the whole response: completed, incomplete
        (`incomplete` is the reason: max_output_tokens, content_filter) or failed."""
        out = self._close_message() + self._close_call()
        status = "failed" if error else "incomplete" if incomplete else "completed"
        self.final = self.response(status, usage=usage, incomplete=incomplete, error=error)
        return out + self._event(f"response.{status}", response=self.final)

    def chat_message(self) -> dict[str, Any]:
        """The output as one Chat Completions assistant message (for the history)."""
        text = output_text(self._output)
        calls = [
            {
                "id": i["call_id"],
                "type": "function",
                "function": {"name": i["name"], "arguments": i["arguments"]},
            }
            for i in self._output
            if i["type"] == "function_call"
        ]
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = calls
        return message

    # --- closing items --------------------------------------------------------------

    def _close_message(self) -> bytes:
        if self._text is None:
            return b""
        text = "".join(self._text)
        index = len(self._output)
        common = {"item_id": self._message_id, "output_index": index, "content_index": 0}
        out = self._event("response.output_text.done", **common, text=text, logprobs=[])
        out += self._event("response.content_part.done", **common, part=_text_part(text))
        item = self._message("completed")
        self._output.append(item)
        self._text = None
        return out + self._event("response.output_item.done", output_index=index, item=item)

    def _close_call(self) -> bytes:
        if self._open_call is None:
            return b""
        call = self._calls[self._open_call]
        self._open_call = None
        index = len(self._output)
        out = self._event(
            "response.function_call_arguments.done",
            item_id=call.item_id,
            output_index=index,
            name=call.name,
            arguments=call.arguments,
        )
        item = _call_item(call, "completed")
        self._output.append(item)
        return out + self._event("response.output_item.done", output_index=index, item=item)

    def _message(self, status: str) -> dict[str, Any]:
        text = "".join(self._text or [])
        return {
            "id": self._message_id,
            "type": "message",
            "role": "assistant",
            "status": status,
            "content": [_text_part(text)] if status == "completed" else [],
        }

    # --- the response object -----------------------------------------------------------

    @property
    def output(self) -> list[dict[str, Any]]:
        return list(self._output)

    def response(
        self,
        status: str,
        *,
        usage: Usage | None = None,
        incomplete: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        r = self.request
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": error,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "instructions": r.get("instructions"),
            "max_output_tokens": r.get("max_output_tokens"),
            "model": self.model,
            "output": self.output if status != "in_progress" else [],
            "parallel_tool_calls": r.get("parallel_tool_calls", True),
            "previous_response_id": r.get("previous_response_id"),
            "store": r.get("store", True),
            "temperature": r.get("temperature"),
            "text": r.get("text") or {"format": {"type": "text"}},
            "tool_choice": r.get("tool_choice", "auto"),
            "tools": r.get("tools") or [],
            "top_p": r.get("top_p"),
            "truncation": "disabled",
            "usage": usage_object(usage) if usage is not None else None,
            "metadata": r.get("metadata") or {},
        }
        if status != "in_progress":
            body.update(self.extra)
        return body


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _call_item(call: _Call, status: str) -> dict[str, Any]:
    return {
        "id": call.item_id,
        "type": "function_call",
        "status": status,
        "call_id": call.call_id,
        "name": call.name,
        "arguments": call.arguments if status == "completed" else "",
    }


def output_text(output: list[dict[str, Any]]) -> str:
    """The text of a response's message items (what the SDK's `output_text` gives)."""
    return "".join(
        part.get("text", "")
        for item in output
        if item.get("type") == "message"
        for part in item.get("content", [])
        if part.get("type") == "output_text"
    )
