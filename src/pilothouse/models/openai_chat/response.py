"""Chat Completions answers back into neutral form: whole answers, stream chunks, and
the error objects OpenAI-compatible servers put inside a 200 answer or a stream.

Compatible servers differ in small ways, all read here: tool arguments sent as an
object instead of JSON text, the legacy `function_call`, Groq's usage under `x_groq`,
vLLM's flat `{"object": "error"}`, and refusals (reported as `content_filter`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from pilothouse.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilteredError,
    ContextTooLongError,
    MalformedResponseError,
    ModelError,
    ModelNotAvailableError,
    RateLimitedError,
    UnavailableError,
)
from pilothouse.models.base import AdapterEvent, Completion, dump_json
from pilothouse.models.http import error_message
from pilothouse.types import (
    FinishReason,
    Message,
    Part,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
    UsageEvent,
    parse_tool_arguments,
)

logger = logging.getLogger(__name__)

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",  # the legacy functions API
    "content_filter": "content_filter",
}


# --- whole answers -------------------------------------------------------------------


def parse_completion(data: dict[str, Any], *, model: str, url: str) -> Completion:
    """The completion in a `chat.completion` body (or the typed error it holds)."""
    error = error_in(data)
    if error is not None:
        raise vendor_error(error, model=model, where=f"the answer from {url}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponseError(f"{url} answered without any choice", model=model)
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise MalformedResponseError(f"{url} answered a choice without a message", model=model)
    parts: list[Part] = []
    text = content_text(message.get("content"))
    refusal = message.get("refusal")
    refused = isinstance(refusal, str) and bool(refusal)
    if text:
        parts.append(TextPart(text))
    elif refused:
        parts.append(TextPart(str(refusal)))
    raw_calls = message.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise MalformedResponseError(f"{url} sent 'tool_calls' that is not a list", model=model)
    for index, raw in enumerate(raw_calls):
        parts.append(_tool_call(raw, index, model=model, url=url))
    legacy = message.get("function_call")
    if not raw_calls and isinstance(legacy, dict):
        parts.append(_tool_call({"function": legacy}, 0, model=model, url=url))
    reason = choice.get("finish_reason")
    finish = _finish_reason(reason) if reason else "stop"
    if refused:
        finish = "content_filter"
    elif finish == "stop" and any(isinstance(p, ToolCallPart) for p in parts):
        finish = "tool_calls"
    return Completion(Message("assistant", tuple(parts)), finish, _usage(data.get("usage")))


def _tool_call(raw: Any, index: int, *, model: str, url: str) -> ToolCallPart:
    function = raw.get("function") if isinstance(raw, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(function, dict) or not isinstance(name, str) or not name:
        raise MalformedResponseError(f"{url} sent a tool call without a name", model=model)
    arguments = _arguments_text(function.get("arguments"))
    args, unparsed = parse_tool_arguments(arguments)
    call_id = raw.get("id") if isinstance(raw, dict) else None
    return ToolCallPart(
        id=call_id if isinstance(call_id, str) and call_id else f"call_{index}",
        name=name,
        arguments=args,
        raw_arguments=unparsed,
    )


def content_text(content: Any) -> str:
    """Message content as text: a string, null, or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def _arguments_text(arguments: Any) -> str:
    """Tool arguments as JSON text. The protocol sends a string; some compatible servers
    send the object itself."""
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    return dump_json(arguments)


# --- streams -------------------------------------------------------------------------


class ChunkReader:
    """Reads the chunks of one stream (after the SSE framing and `[DONE]`), keeping
    the finish reason and whether the model refused."""

    def __init__(self, *, model: str, url: str) -> None:
        self.model = model
        self.url = url
        self.finish: FinishReason | None = None
        self.refused = False

    def read(self, chunk: Any, *, event: str) -> Iterator[AdapterEvent]:
        """The events in one chunk, in order; `event` is the SSE event name."""
        shown, model = self.url, self.model
        if not isinstance(chunk, dict):
            raise MalformedResponseError(
                f"{shown} sent a stream chunk that is not a JSON object", model=model
            )
        error = error_in(chunk) or (chunk if event == "error" else None)
        if error is not None:
            raise vendor_error(error, model=model, where=f"the stream from {shown}")
        usage = _chunk_usage(chunk)
        if usage is not None:
            yield UsageEvent(usage)
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise MalformedResponseError(f"{shown} sent 'choices' that is not a list", model=model)
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict):
                raise MalformedResponseError(
                    f"{shown} sent a 'delta' that is not an object", model=model
                )
            yield from _delta_events(delta)
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                self.refused = True
                yield TextDelta(refusal)
            reason = choice.get("finish_reason")
            if reason:
                self.finish = _finish_reason(reason)


def _delta_events(delta: dict[str, Any]) -> list[TextDelta | ToolCallDelta]:
    events: list[TextDelta | ToolCallDelta] = []
    content = delta.get("content")
    if isinstance(content, str) and content:
        events.append(TextDelta(content))
    calls = delta.get("tool_calls") or []
    if isinstance(calls, list):
        for position, call in enumerate(calls):
            if not isinstance(call, dict):
                continue
            function = call.get("function") or {}
            index = call.get("index", position)
            call_id = call.get("id")
            name = function.get("name") if isinstance(function, dict) else None
            events.append(
                ToolCallDelta(
                    index=index if isinstance(index, int) else position,
                    id=call_id if isinstance(call_id, str) and call_id else None,
                    name=name if isinstance(name, str) and name else None,
                    arguments_delta=_arguments_text(
                        function.get("arguments") if isinstance(function, dict) else None
                    ),
                )
            )
    legacy = delta.get("function_call")
    if not calls and isinstance(legacy, dict):
        name = legacy.get("name")
        events.append(
            ToolCallDelta(
                index=0,
                name=name if isinstance(name, str) and name else None,
                arguments_delta=_arguments_text(legacy.get("arguments")),
            )
        )
    return events


# --- finish reasons and usage --------------------------------------------------------


def _finish_reason(reason: Any) -> FinishReason:
    mapped = _FINISH.get(str(reason))
    if mapped is None:
        logger.warning("unknown finish_reason %r taken as 'stop'", reason)
        return "stop"
    return mapped


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        input_tokens=_int(raw.get("prompt_tokens")),
        output_tokens=_int(raw.get("completion_tokens")),
        cached_tokens=_int(cached),
    )


def _chunk_usage(chunk: dict[str, Any]) -> Usage | None:
    raw = chunk.get("usage")
    if not isinstance(raw, dict):  # Groq puts it under x_groq in the last chunk
        extra = chunk.get("x_groq")
        raw = extra.get("usage") if isinstance(extra, dict) else None
    return _usage(raw) if isinstance(raw, dict) else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# --- errors --------------------------------------------------------------------------


def error_in(data: dict[str, Any]) -> dict[str, Any] | None:
    """The error object in a body or chunk: `{"error": {...}}` (OpenAI), `{"error":
    "text"}`, or vLLM's older flat `{"object": "error", "message": ...}`."""
    error = data.get("error")
    if isinstance(error, dict):
        return error
    if isinstance(error, str) and error:
        return {"message": error}
    if data.get("object") == "error":
        return data
    return None


def vendor_error(error: dict[str, Any], *, model: str, where: str) -> ModelError:
    """The typed error for an error object inside a 200 answer or a stream."""
    detail = error_message(json.dumps({"error": error}))
    code = error.get("code")
    status = code if isinstance(code, int) else None
    kind = f"{error.get('type') or ''} {code or ''} {detail}".lower()
    message = f"error in {where}: {detail}"
    if status == 429 or "rate_limit" in kind or "insufficient_quota" in kind:
        return refine(RateLimitedError(message, model=model, status=status))
    if status in (401, 403) or "authentication" in kind or "invalid_api_key" in kind:
        return AuthenticationError(message, model=model, status=status)
    if "context_length" in kind or "maximum context" in kind:
        return ContextTooLongError(message, model=model, status=status)
    if "content_filter" in kind or "content management policy" in kind:
        return ContentFilteredError(message, model=model, status=status)
    if (status is not None and 400 <= status < 500) or "invalid_request" in kind:
        return BadRequestError(message, model=model, status=status)
    return UnavailableError(message, model=model, status=status)


def refine(error: ModelError) -> ModelError:
    """OpenAI-specific readings of errors the shared mapping cannot know."""
    detail = str(error)
    if isinstance(error, RateLimitedError) and "insufficient_quota" in detail:
        error.retryable = False  # the quota is spent: waiting does not help, failover does
        return error
    if type(error) is BadRequestError and error.status == 404:
        return ModelNotAvailableError(
            f"{error.detail} (check the model name, or for Azure the deployment name, "
            "and the base URL)",
            model=error.model,
            status=404,
        )
    return error
