"""The mapping of Pilothouse spans (see attributes.py) to OpenTelemetry spans following
the GenAI semantic conventions (https://opentelemetry.io/docs/specs/semconv/gen-ai/).

Plain Python with no OpenTelemetry import, so it can be read and tested on its own;
the exporter that sends the result over OTLP is in otel.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pilothouse.tracing import attributes as attr
from pilothouse.tracing.spans import JSONValue, Span

# Pilothouse provider names -> the conventions' gen_ai.provider.name values.
PROVIDER_NAMES: dict[str, str] = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "groq": "groq",
    "mistral": "mistral_ai",
}
# Providers that run in the same process: their model spans are INTERNAL, not CLIENT.
IN_PROCESS_PROVIDERS = frozenset({"local", "test", "function"})

# Attributes the mapping consumes (turned into other keys, or content handled apart).
_CONSUMED = frozenset(
    {
        attr.REQUEST_MODEL,
        attr.RESPONSE_MODEL,
        attr.REQUEST_MESSAGES,
        attr.RESPONSE_MESSAGE,
        attr.RETRIEVAL_HITS,
        attr.RUN_QUESTION,
        attr.RUN_ANSWER,
        attr.TOOL_ARGUMENTS,
        attr.TOOL_RESULT,
        attr.RETRIEVAL_QUERY,
    }
)

OtelAttribute = (
    str | bool | int | float | Sequence[str] | Sequence[bool] | Sequence[int] | Sequence[float]
)


@dataclass(frozen=True, slots=True)
class GenAISpan:
    """What one Pilothouse span becomes in OpenTelemetry."""

    name: str
    kind: Literal["internal", "client"]
    attributes: dict[str, OtelAttribute]
    events: list[tuple[str, float, dict[str, OtelAttribute]]]
    error: str | None


def split_model_id(model_id: str) -> tuple[str | None, str]:
    """`openai:gpt-4.1` -> ("openai", "gpt-4.1"); an id without provider -> (None, id)."""
    provider, sep, name = model_id.partition(":")
    return (provider, name) if sep and provider and name else (None, model_id)


def genai_span(span: Span, *, capture_content: bool = False) -> GenAISpan:
    """Map a Pilothouse span to its OpenTelemetry GenAI form.

    run -> `invoke_agent {copilot}`; model -> `chat {model}`; tool ->
    `execute_tool {tool}`; retrieval -> `retrieval {data source}`; other kinds keep
    their name. Attributes without a convention pass through under their own keys
    (`pilothouse.*`); content keys only with `capture_content`.
    """
    a = span.attributes
    out: dict[str, OtelAttribute] = {}
    kind: Literal["internal", "client"] = "internal"
    name = span.name

    if span.kind == "run":
        agent = _str(a.get(attr.AGENT_NAME)) or _without(span.name, "invoke_agent")
        name = f"invoke_agent {agent}" if agent else "invoke_agent"
        out["gen_ai.operation.name"] = "invoke_agent"
        if capture_content:
            question = _str(a.get(attr.RUN_QUESTION))
            answer = _str(a.get(attr.RUN_ANSWER))
            if question is not None:
                out["gen_ai.input.messages"] = _json(
                    [{"role": "user", "parts": [{"type": "text", "content": question}]}]
                )
            if answer is not None:
                out["gen_ai.output.messages"] = _json(
                    [
                        {
                            "role": "assistant",
                            "parts": [{"type": "text", "content": answer}],
                            "finish_reason": "stop",
                        }
                    ]
                )
    elif span.kind == "model":
        requested = _str(a.get(attr.REQUEST_MODEL))
        answered = _str(a.get(attr.RESPONSE_MODEL))
        req_provider, req_name = split_model_id(requested) if requested else (None, None)
        res_provider, res_name = split_model_id(answered) if answered else (None, None)
        provider = res_provider or req_provider
        name = f"chat {req_name}" if req_name else "chat"
        out["gen_ai.operation.name"] = "chat"
        if provider:
            out["gen_ai.provider.name"] = PROVIDER_NAMES.get(provider, provider)
            kind = "internal" if provider in IN_PROCESS_PROVIDERS else "client"
        if req_name:
            out["gen_ai.request.model"] = req_name
            out["pilothouse.request.model"] = requested or req_name
        if res_name:
            out["gen_ai.response.model"] = res_name
            out["pilothouse.response.model"] = answered or res_name
        if capture_content:
            _add_model_content(out, a)
    elif span.kind == "tool":
        tool = _str(a.get(attr.TOOL_NAME)) or _without(span.name, "execute_tool") or "tool"
        name = f"execute_tool {tool}"
        out["gen_ai.operation.name"] = "execute_tool"
        out["gen_ai.tool.name"] = tool
        out["gen_ai.tool.type"] = "function"
        if capture_content:
            if attr.TOOL_ARGUMENTS in a:
                args = a[attr.TOOL_ARGUMENTS]
                out[attr.TOOL_ARGUMENTS] = args if isinstance(args, str) else _json(args)
            if attr.TOOL_RESULT in a:
                result = a[attr.TOOL_RESULT]
                out[attr.TOOL_RESULT] = result if isinstance(result, str) else _json(result)
    elif span.kind == "retrieval":
        source = _str(a.get(attr.DATA_SOURCE_ID))
        name = f"retrieval {source}" if source else "retrieval"
        out["gen_ai.operation.name"] = "retrieval"
        hits = a.get(attr.RETRIEVAL_HITS)
        if isinstance(hits, list):
            scores = [s for s in (_score(h) for h in hits) if s is not None]
            out["pilothouse.retrieval.hit_count"] = len(hits)
            if scores:
                out["pilothouse.retrieval.top_score"] = max(scores)
                out["pilothouse.retrieval.scores"] = scores
            if capture_content:
                out["gen_ai.retrieval.documents"] = _json(
                    [_document(h) for h in hits if isinstance(h, dict)]
                )
        if capture_content and _str(a.get(attr.RETRIEVAL_QUERY)) is not None:
            out[attr.RETRIEVAL_QUERY] = str(a[attr.RETRIEVAL_QUERY])

    for key, value in a.items():
        if key in out or key in _CONSUMED:
            continue
        if key in attr.CONTENT_KEYS and not capture_content:
            continue
        converted = otel_value(value)
        if converted is not None:
            out[key] = converted

    if span.status == "error":
        out["error.type"] = span.error_type or "_OTHER"
    events = [
        (
            e.name,
            e.time,
            {
                k: v
                for k, v in ((k, otel_value(v)) for k, v in e.attributes.items())
                if v is not None
            },
        )
        for e in span.events
    ]
    return GenAISpan(name, kind, out, events, span.error if span.status == "error" else None)


def _add_model_content(out: dict[str, OtelAttribute], a: Mapping[str, JSONValue]) -> None:
    messages = a.get(attr.REQUEST_MESSAGES)
    if isinstance(messages, list):
        system = [m for m in messages if isinstance(m, dict) and m.get("role") == "system"]
        others = [m for m in messages if isinstance(m, dict) and m.get("role") != "system"]
        if system:
            out["gen_ai.system_instructions"] = _json([p for m in system for p in _genai_parts(m)])
        out["gen_ai.input.messages"] = _json([_genai_message(m) for m in others])
    response = a.get(attr.RESPONSE_MESSAGE)
    if isinstance(response, dict):
        message = _genai_message(response)
        reasons = a.get(attr.FINISH_REASONS)
        if isinstance(reasons, list) and reasons:
            message["finish_reason"] = str(reasons[0])
        out["gen_ai.output.messages"] = _json([message])


def _genai_message(message: Mapping[str, Any]) -> dict[str, Any]:
    return {"role": str(message.get("role", "user")), "parts": _genai_parts(message)}


def _genai_parts(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Pilothouse message parts -> the conventions' parts (text, tool_call,
    tool_call_response, uri/blob)."""
    parts: list[dict[str, Any]] = []
    for part in message.get("parts") or []:
        if not isinstance(part, dict):
            continue
        kind = part.get("kind")
        if kind == "text":
            parts.append({"type": "text", "content": part.get("text", "")})
        elif kind == "tool_call":
            parts.append(
                {
                    "type": "tool_call",
                    "id": part.get("id"),
                    "name": part.get("name"),
                    "arguments": part.get("arguments"),
                }
            )
        elif kind == "tool_result":
            parts.append(
                {
                    "type": "tool_call_response",
                    "id": part.get("tool_call_id"),
                    "response": part.get("content"),
                }
            )
        elif kind == "image":
            if part.get("url"):
                parts.append({"type": "uri", "modality": "image", "uri": part["url"]})
            else:
                parts.append(
                    {
                        "type": "blob",
                        "modality": "image",
                        "mime_type": part.get("media_type"),
                        "content": part.get("data"),
                    }
                )
    return parts


def _document(hit: Mapping[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": str(hit.get("chunk_id", hit.get("id", "")))}
    score = _score(hit)
    if score is not None:
        doc["score"] = score
    if hit.get("text") is not None:
        doc["content"] = hit["text"]
    meta = {k: hit[k] for k in ("source", "page", "heading") if hit.get(k) is not None}
    if meta:
        doc["metadata"] = meta
    return doc


def _score(hit: Any) -> float | None:
    if not isinstance(hit, dict):
        return None
    score = hit.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float):
        return None
    return float(score)


def otel_value(value: JSONValue) -> OtelAttribute | None:
    """An attribute value OpenTelemetry accepts: primitives and homogeneous lists of
    primitives as they are; anything else as a JSON string; None dropped."""
    if value is None:
        return None
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list):
        if not value:
            return []
        if all(isinstance(v, str) for v in value):
            return [str(v) for v in value]
        if all(isinstance(v, bool) for v in value):
            return [bool(v) for v in value]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return [int(v) for v in value if isinstance(v, int)]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            return [float(v) for v in value if isinstance(v, int | float)]
    return _json(value)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _without(name: str, operation: str) -> str | None:
    """A span name with the operation prefix it may already carry removed
    ("execute_tool open_ticket" -> "open_ticket"); None when nothing is left."""
    rest = name.removeprefix(operation).strip() if name.startswith(operation) else name.strip()
    return rest or None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
