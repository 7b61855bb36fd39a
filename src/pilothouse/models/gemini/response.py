"""Gemini answers back into neutral form: `GenerateContentResponse` chunks (the whole
answer, or each stream event), finish reasons, usage, and Gemini's error bodies.

Returned calls get generated ids unless Gemini supplied one; their thought signatures
are handed to a `remember` callback so the adapter can send them back later.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from pilothouse.errors import (
    AuthenticationError,
    ContentFilteredError,
    MalformedResponseError,
    ModelError,
    ModelNotAvailableError,
    RateLimitedError,
)
from pilothouse.models.base import AdapterEvent, Completion, dump_json
from pilothouse.models.http import error_for_status
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
)

_FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "LANGUAGE",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)
_BAD_CALLS = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)s\s*$")

Remember = Callable[[str, str], None]
"""Called with (call id, thought signature) for each signed function call."""


def usage_from(meta: Any) -> Usage:
    """Usage from `usageMetadata`. Thinking tokens are billed as output, and count so."""
    if not isinstance(meta, dict):
        return Usage()

    def count(key: str) -> int:
        value = meta.get(key)
        return int(value) if isinstance(value, int | float) else 0

    return Usage(
        input_tokens=count("promptTokenCount") + count("toolUsePromptTokenCount"),
        output_tokens=count("candidatesTokenCount") + count("thoughtsTokenCount"),
        cached_tokens=count("cachedContentTokenCount"),
    )


def finish_reason(raw: str, has_calls: bool, *, model: str) -> FinishReason:
    """The neutral finish reason for Gemini's `finishReason`."""
    if raw == "MAX_TOKENS":
        return "length"
    if raw in _FILTERED:
        return "content_filter"
    if raw in _BAD_CALLS:
        raise MalformedResponseError(
            f"Gemini could not form a valid function call (finishReason {raw}); retry, or "
            "simplify the tool schemas",
            model=model,
        )
    if raw == "STOP":
        return "tool_calls" if has_calls else "stop"
    raise MalformedResponseError(
        f"Gemini stopped for an unspecified reason (finishReason {raw}); the answer may be "
        "incomplete",
        model=model,
    )


def gemini_error(
    status: int, body: bytes | str, headers: Mapping[str, str], *, model: str, url: str
) -> ModelError:
    """The typed error for a Gemini error answer (`{"error": {code, message, status,
    details}}`): the shared mapping, refined by Gemini's own details (a `RetryInfo`
    delay, an `API_KEY_INVALID` reason, a 404 for an unknown model)."""
    error = error_for_status(status, body, headers, model=model, url=url)
    details = _error_details(body)
    reasons = {d.get("reason") for d in details}
    if "API_KEY_INVALID" in reasons or isinstance(error, AuthenticationError):
        return AuthenticationError(
            f"{error.detail}; check the Gemini key (GEMINI_API_KEY or [providers.gemini] api_key)",
            model=model,
            status=status,
        )
    if isinstance(error, RateLimitedError) and error.retry_after is None:
        for detail in details:
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                error.retry_after = float(match.group(1))
    if status == 404:
        return ModelNotAvailableError(
            f"{error.detail}; check the model name against GET {url.split('/models/')[0]}/models",
            model=model,
            status=status,
        )
    return error


def _error_details(body: bytes | str) -> list[dict[str, Any]]:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return []
    if isinstance(data, list) and data:
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def parse_completion(
    data: dict[str, Any], *, model: str, url: str, remember: Remember
) -> Completion:
    """The completion in a whole `generateContent` answer."""
    reader = ChunkReader(model=model, url=url, remember=remember)
    events = reader.read(data)
    if not data.get("candidates"):
        raise MalformedResponseError("Gemini answered without candidates", model=model)
    if reader.finish is None:
        raise MalformedResponseError("Gemini answered without a finishReason", model=model)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    parts: list[Part] = [TextPart(text)] if text else []
    usage = Usage()
    for event in events:
        if isinstance(event, ToolCallDelta):
            args = json.loads(event.arguments_delta)
            parts.append(ToolCallPart(event.id or "", event.name or "", args))
        elif isinstance(event, UsageEvent):
            usage = event.usage
    return Completion(Message("assistant", tuple(parts)), reader.finish, usage)


class ChunkReader:
    """Turns response chunks (the whole answer, or each stream event) into events."""

    def __init__(self, *, model: str, url: str, remember: Remember) -> None:
        self.model = model
        self.url = url
        self.remember = remember
        self.calls = 0
        self.finish: FinishReason | None = None

    def read(self, chunk: Any) -> list[AdapterEvent]:
        mid = self.model
        if not isinstance(chunk, dict):
            raise MalformedResponseError("Gemini sent a chunk that is not a JSON object", model=mid)
        if isinstance(chunk.get("error"), dict):  # not documented for SSE, but seen
            code = chunk["error"].get("code")
            raise gemini_error(
                code if isinstance(code, int) else 500,
                dump_json(chunk),
                {},
                model=mid,
                url=self.url,
            )
        feedback = chunk.get("promptFeedback")
        block = feedback.get("blockReason") if isinstance(feedback, dict) else None
        if block:
            raise ContentFilteredError(
                f"Gemini blocked the prompt (blockReason {block}); rephrase it or use another "
                "model",
                model=mid,
            )
        events: list[AdapterEvent] = []
        candidates = chunk.get("candidates") or []
        if not isinstance(candidates, list) or (candidates and not isinstance(candidates[0], dict)):
            raise MalformedResponseError("Gemini sent malformed candidates", model=mid)
        raw_finish: str | None = None
        if candidates:
            candidate = candidates[0]
            content = candidate.get("content") or {}
            parts = content.get("parts") if isinstance(content, dict) else None
            for part in parts if isinstance(parts, list) else []:
                events.extend(self._part(part))
            raw_finish = candidate.get("finishReason")
        if "usageMetadata" in chunk:
            events.append(UsageEvent(usage_from(chunk["usageMetadata"])))
        if raw_finish:
            self.finish = finish_reason(str(raw_finish), self.calls > 0, model=mid)
        return events

    def _part(self, part: Any) -> list[AdapterEvent]:
        if not isinstance(part, dict):
            raise MalformedResponseError(
                "Gemini sent a part that is not an object", model=self.model
            )
        call = part.get("functionCall")
        if isinstance(call, dict):
            name = call.get("name")
            args = call.get("args") or {}
            if not isinstance(name, str) or not name or not isinstance(args, dict):
                raise MalformedResponseError(
                    "Gemini sent a functionCall without a name or with non-object args",
                    model=self.model,
                )
            call_id = str(call.get("id") or f"call_{uuid.uuid4().hex[:24]}")
            if isinstance(part.get("thoughtSignature"), str):
                self.remember(call_id, part["thoughtSignature"])
            index = self.calls
            self.calls += 1
            return [ToolCallDelta(index, id=call_id, name=name, arguments_delta=dump_json(args))]
        text = part.get("text")
        if isinstance(text, str) and text and not part.get("thought"):
            return [TextDelta(text)]
        return []
