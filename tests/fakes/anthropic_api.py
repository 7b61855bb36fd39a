"""A strict fake of Anthropic's Messages API (`POST /v1/messages`), JSON and SSE.

It checks what the real API checks and answers a malformed request the way the API
does: HTTP 400 with `{"type": "error", "error": {"type": "invalid_request_error",
"message": ...}}`. Checked: the `x-api-key` and `anthropic-version` headers, required
`model` / `max_tokens` / `messages`, no unknown top-level fields (so a `seed` is
refused), roles alternating from `user`, the shape of every content block, that every
`tool_use` of an assistant turn is answered by a `tool_result` at the start of the next
user turn (and no `tool_result` answers anything else), tools and `tool_choice`.

Facts: Anthropic has no output-schema field; Pilothouse forces a tool whose
`input_schema` is the schema, so `schema_properties` are those of the tool that
`tool_choice` forces. A `Reply` whose text is a JSON object, to a request that forces a
tool, comes back as a `tool_use` of that tool, as the real API would answer.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from itertools import count
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from pilothouse.testing.conformance import HarnessSpec
from pilothouse.testing.wire import (
    Call,
    CutStream,
    Echo,
    Facts,
    Fail,
    FakeVendor,
    Malformed,
    MidStreamError,
    Reply,
    Stall,
    Step,
    compact,
)

VERSIONS = ("2023-06-01", "2023-01-01")
TOP_LEVEL = {
    "model",
    "messages",
    "max_tokens",
    "system",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "stream",
    "tools",
    "tool_choice",
    "metadata",
    "thinking",
    "service_tier",
}
MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


class Invalid(Exception):
    """A request the real API would refuse with 400 invalid_request_error."""


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class AnthropicFake(FakeVendor):
    def __init__(self, key: str = "test-key") -> None:
        super().__init__(key)
        # Keys the fake's account holds: the harness key, and the "live" key the
        # conformance suite sends to check where a key travels.
        self.valid_keys = {key, "sk-live-abc"}
        self.ids = count(1)
        self.app = Starlette(
            routes=[
                Route("/v1/messages", self.messages, methods=["POST"]),
                Route("/{path:path}", self.not_found, methods=["GET", "POST"]),
            ]
        )

    # --- HTTP --------------------------------------------------------------------

    async def not_found(self, request: Request) -> Response:
        return self.error(404, f"Not found: {request.url.path}")

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return self.json_response(error_body(status, message), status, headers)

    async def messages(self, request: Request) -> Response:
        try:
            payload = await self.record(request)
        except json.JSONDecodeError:
            return self.error(400, "There was an error parsing the body of your request as JSON")
        headers = self.headers[-1]
        if headers.get("x-api-key") not in self.valid_keys:
            return self.error(401, "invalid x-api-key")
        if headers.get("anthropic-version") not in VERSIONS:
            return self.error(
                400, "anthropic-version: header is required and must be a known version"
            )
        try:
            facts = self.validate(payload)
        except Invalid as exc:
            return self.error(400, str(exc))
        echo = bool(self.script) and isinstance(self.script[0], Echo)
        step = self.next_step(facts)
        forced = (payload.get("tool_choice") or {}).get("name")
        if isinstance(step, Reply) and forced and not echo:
            step = as_forced_tool(step, forced)
        if payload.get("stream") and not isinstance(step, Fail):
            return StreamingResponse(self.stream(step, facts), media_type="text/event-stream")
        return await self.answer(step, facts)

    # --- validation ---------------------------------------------------------------

    def validate(self, payload: dict[str, Any]) -> Facts:
        extra = sorted(set(payload) - TOP_LEVEL)
        if extra:
            raise Invalid(f"{extra[0]}: Extra inputs are not permitted")
        if not isinstance(payload.get("model"), str) or not payload["model"]:
            raise Invalid("model: Field required")
        max_tokens = payload.get("max_tokens")
        if type(max_tokens) is not int or max_tokens < 1:
            raise Invalid("max_tokens: Field required (an integer of at least 1)")
        temperature = payload.get("temperature")
        if temperature is not None and (
            not isinstance(temperature, int | float) or not 0 <= temperature <= 1
        ):
            raise Invalid("temperature: range: 0..1")
        stop = payload.get("stop_sequences", [])
        if not isinstance(stop, list) or not all(isinstance(s, str) and s.strip() for s in stop):
            raise Invalid("stop_sequences: each stop sequence must be a non-empty string")
        facts = Facts(
            model=payload["model"],
            stream=bool(payload.get("stream")),
            temperature=temperature,
            max_tokens=max_tokens,
            stop=list(stop),
            system=system_text(payload.get("system")),
        )
        tool_names = self.validate_tools(payload, facts)
        self.validate_messages(payload.get("messages"), facts, tool_names)
        return facts

    def validate_tools(self, payload: dict[str, Any], facts: Facts) -> set[str]:
        tools = payload.get("tools", [])
        if not isinstance(tools, list):
            raise Invalid("tools: Input should be a valid list")
        names: list[str] = []
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not NAME.match(str(tool.get("name", ""))):
                raise Invalid(
                    f"tools.{i}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
                )
            schema = tool.get("input_schema")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise Invalid(f"tools.{i}.input_schema: type must be 'object'")
            extra = set(tool) - {"name", "description", "input_schema", "cache_control", "type"}
            if extra:
                raise Invalid(f"tools.{i}.{sorted(extra)[0]}: Extra inputs are not permitted")
            names.append(tool["name"])
            facts.tool_params.append(list(schema.get("properties", {})))
        if len(set(names)) != len(names):
            raise Invalid("tools: Tool names must be unique.")
        facts.tools = names
        choice = payload.get("tool_choice")
        if choice is None:
            return set(names)
        if not names:
            raise Invalid("tool_choice may only be specified while providing tools.")
        kind = choice.get("type") if isinstance(choice, dict) else None
        allowed = {"type", "disable_parallel_tool_use"} | ({"name"} if kind == "tool" else set())
        if kind not in ("auto", "any", "tool", "none") or set(choice) - allowed:
            raise Invalid(f"tool_choice: invalid value {json.dumps(choice)}")
        if "disable_parallel_tool_use" in choice and (
            kind == "none" or not isinstance(choice["disable_parallel_tool_use"], bool)
        ):
            raise Invalid("tool_choice.disable_parallel_tool_use: not valid here")
        if kind == "tool":
            if choice.get("name") not in names:
                raise Invalid(f"tool_choice.name: tool {choice.get('name')!r} not found in tools")
            facts.tool_choice = choice["name"]
            schema = tools[names.index(choice["name"])]["input_schema"]
            facts.schema_properties = list(schema.get("properties", {}))
        else:
            facts.tool_choice = {"auto": "auto", "any": "required", "none": "none"}[kind]
        return set(names)

    def validate_messages(self, messages: Any, facts: Facts, tool_names: set[str]) -> None:
        if not isinstance(messages, list) or not messages:
            raise Invalid("messages: at least one message is required")
        pending: list[str] = []  # tool_use ids the next user turn must answer
        uses_tools = False
        for i, message in enumerate(messages):
            where = f"messages.{i}"
            if not isinstance(message, dict) or set(message) != {"role", "content"}:
                raise Invalid(f"{where}: a message has exactly the fields role and content")
            role = message["role"]
            if role not in ("user", "assistant"):
                raise Invalid(f"{where}.role: Input should be 'user' or 'assistant'")
            expected = "user" if i % 2 == 0 else "assistant"
            if role != expected:
                raise Invalid(
                    f"{where}: roles must alternate between 'user' and 'assistant', "
                    "starting with 'user'"
                )
            blocks = message["content"]
            if isinstance(blocks, str):
                if not blocks:
                    raise Invalid(f"{where}: all messages must have non-empty content")
                blocks = [{"type": "text", "text": blocks}]
            if not isinstance(blocks, list) or not blocks:
                raise Invalid(f"{where}: all messages must have non-empty content")
            texts: list[str] = []
            results: list[str] = []
            calls: list[str] = []
            for j, block in enumerate(blocks):
                kind = self.validate_block(block, role, f"{where}.content.{j}", facts)
                if kind == "text":
                    texts.append(block["text"])
                elif kind == "tool_result":
                    if texts:
                        raise Invalid(
                            f"{where}: tool_result blocks must come first in the user message"
                        )
                    results.append(block["tool_use_id"])
                elif kind == "tool_use":
                    calls.append(block["id"])
            uses_tools = uses_tools or bool(results or calls)
            if role == "user":
                unanswered = [c for c in pending if c not in results]
                if unanswered:
                    raise Invalid(
                        f"messages.{i - 1}: `tool_use` ids were found without `tool_result` "
                        f"blocks immediately after: {', '.join(unanswered)}. Each `tool_use` "
                        "block must have a corresponding `tool_result` block in the next message."
                    )
                stray = [r for r in results if r not in pending]
                if stray:
                    raise Invalid(
                        f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{stray[0]}. Each `tool_result` block must have a corresponding "
                        "`tool_use` block in the previous message."
                    )
                if results:
                    joined = "\n".join(
                        str(b.get("content", "")) for b in blocks if b["type"] == "tool_result"
                    )
                    facts.messages.append(["tool", joined])
                if texts:
                    facts.messages.append(["user", "".join(texts)])
                pending = []
            else:
                if len(set(calls)) != len(calls):
                    raise Invalid(f"{where}: `tool_use` ids must be unique")
                facts.messages.append(["assistant", "".join(texts)])
                pending = calls
        if pending:
            # The last turn may be the assistant's (a prefill) only without tool calls.
            raise Invalid(f"messages.{len(messages) - 1}: tool_use without tool_result")
        if uses_tools and not tool_names:
            raise Invalid(
                "Requests which include `tool_use` or `tool_result` blocks must define tools."
            )

    def validate_block(self, block: Any, role: str, where: str, facts: Facts) -> str:
        if not isinstance(block, dict):
            raise Invalid(f"{where}: Input should be a valid dictionary")
        kind = block.get("type")
        if kind == "text":
            if not isinstance(block.get("text"), str) or not block["text"]:
                raise Invalid(f"{where}: text content blocks must be non-empty")
        elif kind == "image":
            self.validate_image(block, where)
            facts.images += 1
        elif kind == "tool_use":
            if role != "assistant":
                raise Invalid(f"{where}: tool_use blocks are only allowed in assistant messages")
            if not TOOL_ID.match(str(block.get("id", ""))):
                raise Invalid(f"{where}.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
            if not isinstance(block.get("name"), str) or not isinstance(block.get("input"), dict):
                raise Invalid(f"{where}: tool_use needs a name and an input object")
            facts.assistant_tool_calls.append([block["name"], compact(block["input"])])
        elif kind == "tool_result":
            if role != "user":
                raise Invalid(f"{where}: tool_result blocks are only allowed in user messages")
            if not isinstance(block.get("tool_use_id"), str):
                raise Invalid(f"{where}.tool_use_id: Field required")
            if "is_error" in block and not isinstance(block["is_error"], bool):
                raise Invalid(f"{where}.is_error: Input should be a valid boolean")
            content = block.get("content", "")
            if isinstance(content, list):
                for k, inner in enumerate(content):
                    if self.validate_block(inner, role, f"{where}.content.{k}", facts) not in (
                        "text",
                        "image",
                    ):
                        raise Invalid(f"{where}.content.{k}: only text and image blocks here")
                content = "".join(b.get("text", "") for b in content)
            elif not isinstance(content, str):
                raise Invalid(f"{where}.content: Input should be a string or a list")
            facts.tool_results.append([block["tool_use_id"], content])
        else:
            raise Invalid(f"{where}.type: unknown content block type {kind!r}")
        return str(kind)

    def validate_image(self, block: dict[str, Any], where: str) -> None:
        source = block.get("source")
        if not isinstance(source, dict):
            raise Invalid(f"{where}.source: Field required")
        if source.get("type") == "base64":
            if source.get("media_type") not in MEDIA_TYPES:
                raise Invalid(f"{where}.source.media_type: Input should be one of {MEDIA_TYPES}")
            if not isinstance(source.get("data"), str) or not source["data"]:
                raise Invalid(f"{where}.source.data: Field required")
        elif source.get("type") == "url":
            if not str(source.get("url", "")).startswith(("http://", "https://")):
                raise Invalid(f"{where}.source.url: must be an http(s) URL")
        else:
            raise Invalid(f"{where}.source.type: Input should be 'base64' or 'url'")

    # --- rendering ---------------------------------------------------------------

    def message_id(self) -> str:
        return f"msg_fake{next(self.ids):04d}"

    def usage(self, reply: Reply) -> dict[str, int]:
        total, output, cached = reply.usage
        return {
            "input_tokens": total - cached,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cached,
            "output_tokens": output,
        }

    def stop_reason(self, reply: Reply) -> str:
        finish = reply.finish or ("tool_calls" if reply.tool_calls else "stop")
        return STOP_REASONS[finish]

    async def answer(self, step: Step, facts: Facts) -> Response:
        if isinstance(step, Fail):
            headers = {"retry-after": step.retry_after} if step.retry_after else None
            return self.error(step.status, step.message, headers)
        if isinstance(step, Malformed):
            return Response(b'{"id": "msg_1", "content": [', media_type="application/json")
        if isinstance(step, MidStreamError):
            return self.error(529, step.message)
        if isinstance(step, CutStream):
            return Response(b'{"id": "msg_1", "type": "message", "content": [{"type": "te')
        if isinstance(step, Stall):
            await asyncio.sleep(step.seconds)
            step = Reply(step.text)
        assert isinstance(step, Reply)
        content: list[dict[str, Any]] = []
        if step.text:
            content.append({"type": "text", "text": step.text})
        content += [tool_use(call) for call in step.tool_calls]
        body = {
            "id": self.message_id(),
            "type": "message",
            "role": "assistant",
            "model": facts.model,
            "content": content,
            "stop_reason": self.stop_reason(step),
            "stop_sequence": None,
            "usage": self.usage(step),
        }
        return self.json_response(body, headers={"request-id": "req_fake"})

    async def stream(self, step: Step, facts: Facts) -> AsyncIterator[bytes]:
        if isinstance(step, Malformed):
            yield b"event: message_start\ndata: {not json\n\n"
            return
        text = step.text if isinstance(step, CutStream | MidStreamError | Stall) else ""
        reply = step if isinstance(step, Reply) else Reply(text)
        start = {
            "id": self.message_id(),
            "type": "message",
            "role": "assistant",
            "model": facts.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**self.usage(reply), "output_tokens": 1},
        }
        yield sse("message_start", {"type": "message_start", "message": start})
        index = 0
        if reply.text:
            block = {"type": "text", "text": ""}
            yield sse(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": block},
            )
            yield sse("ping", {"type": "ping"})
            for piece in self.split_text(reply.text, reply.chunks):
                delta = {"type": "text_delta", "text": piece}
                yield sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                )
            index = 1
        if isinstance(step, CutStream):
            if step.abrupt:
                raise ConnectionResetError("the fake drops the connection mid-stream")
            return
        if isinstance(step, MidStreamError):
            yield sse(
                "error",
                {"type": "error", "error": {"type": "overloaded_error", "message": step.message}},
            )
            return
        if isinstance(step, Stall):
            await asyncio.sleep(step.seconds)
        if reply.text:
            yield sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        for call in reply.tool_calls:
            block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            yield sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
            for piece in ["", *self.split_text(json.dumps(call.arguments), 3)]:
                delta = {"type": "input_json_delta", "partial_json": piece}
                yield sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            yield sse("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        delta = {"stop_reason": self.stop_reason(reply), "stop_sequence": None}
        usage = {"output_tokens": reply.usage[1]}
        yield sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        yield sse("message_stop", {"type": "message_stop"})


def system_text(system: Any) -> str:
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    if isinstance(system, list) and all(
        isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        for b in system
    ):
        return "\n\n".join(b["text"] for b in system)
    raise Invalid("system: Input should be a string or a list of text blocks")


def tool_use(call: Call) -> dict[str, Any]:
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}


def as_forced_tool(reply: Reply, name: str) -> Reply:
    """With tool_choice forcing a tool, the API answers with that tool's call."""
    if reply.tool_calls:
        return reply
    try:
        arguments = json.loads(reply.text)
    except json.JSONDecodeError:
        return reply
    if not isinstance(arguments, dict):
        return reply
    call = Call("toolu_forced01", name, arguments)
    return Reply(tool_calls=(call,), finish="tool_calls", usage=reply.usage, chunks=reply.chunks)


def harness_specs() -> list[HarnessSpec]:
    return [
        HarnessSpec(
            provider="anthropic",
            make_fake=AnthropicFake,
            model_name="claude-sonnet-4-5",
            features=frozenset({"mid_stream_error"}),
        )
    ]
