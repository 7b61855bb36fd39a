"""Export traces as OpenTelemetry spans over OTLP/HTTP, following the GenAI semantic
conventions (https://opentelemetry.io/docs/specs/semconv/gen-ai/).

Configured by the standard environment variables:

- `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is) or `OTEL_EXPORTER_OTLP_ENDPOINT`
  (`/v1/traces` appended); with neither, nothing is exported;
- `OTEL_EXPORTER_OTLP_TRACES_HEADERS` / `OTEL_EXPORTER_OTLP_HEADERS` (`k=v,k2=v2`);
- `OTEL_SERVICE_NAME` (default "pilothouse"), `OTEL_RESOURCE_ATTRIBUTES`;
- `OTEL_SDK_DISABLED=true` turns export off;
- `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` (or `span_only`,
  `span_and_event`) opts in to message content: prompts, answers, tool arguments and
  results, retrieval queries and passages. Off by default.

Only the http/protobuf protocol is spoken. The official SDK (`opentelemetry-sdk`,
`opentelemetry-exporter-otlp-proto-http`, the `otel` extra) is imported only when a
sink is made, so the core works without it. Spans are exported from the SDK's batch
processor thread; `export` only queues them.

The mapping from Pilothouse spans (see attributes.py) is `genai_span`, plain Python
with no OpenTelemetry import, so it can be read and tested on its own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote

from pilothouse.tracing import attributes as attr
from pilothouse.tracing.spans import JSONValue, Span

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter

logger = logging.getLogger(__name__)

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURE_ON = {"true", "1", "yes", "on", "span_only", "span_and_event"}
INSTRUMENTATION_NAME = "pilothouse"

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


class OtelUnavailableError(RuntimeError):
    """Export is configured but cannot run (package missing, unsupported protocol)."""


# --- configuration ----------------------------------------------------------------


def otlp_traces_endpoint(environ: Mapping[str, str]) -> str | None:
    """The OTLP/HTTP traces URL configured in `environ`, or None when export is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    traces = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if traces:
        return traces
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if base:
        return base.rstrip("/") + "/v1/traces"
    return None


def capture_content_enabled(environ: Mapping[str, str]) -> bool:
    return environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in _CAPTURE_ON


def _parse_pairs(text: str) -> dict[str, str]:
    """`k=v,k2=v2` with percent-encoded values (the OTLP headers/resource format)."""
    pairs: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            pairs[unquote(key.strip())] = unquote(value.strip())
    return pairs


# --- the mapping ------------------------------------------------------------------


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


# --- the sink ---------------------------------------------------------------------


class OtelSink:
    """A `SpanSink` that sends spans to an OTLP/HTTP endpoint through the official SDK.

    `exporter` defaults to the SDK's OTLP/HTTP protobuf exporter for `endpoint`.
    `batch=False` exports synchronously in `export` (tests only: it blocks on the
    network); the default queues spans for the SDK's batch processor thread.
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        capture_content: bool = False,
        service_name: str = "pilothouse",
        resource_attributes: Mapping[str, str] | None = None,
        exporter: SpanExporter | None = None,
        batch: bool = True,
    ) -> None:
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
            from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        except ImportError as exc:
            raise OtelUnavailableError(
                "an OTLP endpoint is configured but the OpenTelemetry packages are not "
                f"installed ({exc.name}); install them with: pip install 'pilothouse[otel]'"
            ) from None
        if exporter is None:
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )
            except ImportError as exc:
                raise OtelUnavailableError(
                    "an OTLP endpoint is configured but the OTLP/HTTP exporter is not "
                    f"installed ({exc.name}); install it with: pip install 'pilothouse[otel]'"
                ) from None
            exporter = OTLPSpanExporter(
                endpoint=endpoint, headers=dict(headers or {}), timeout=timeout_s
            )
        self.capture_content = capture_content
        self._resource = Resource({**(resource_attributes or {}), "service.name": service_name})
        self._scope = InstrumentationScope(INSTRUMENTATION_NAME)
        self._processor: SpanProcessor = (
            BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], **overrides: Any) -> OtelSink:
        """A sink configured by the standard OTEL_* variables in `environ`."""
        endpoint = otlp_traces_endpoint(environ)
        if endpoint is None:
            raise OtelUnavailableError(
                "no OTLP endpoint configured: set OTEL_EXPORTER_OTLP_ENDPOINT or "
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
            )
        protocol = (
            environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        ).strip()
        if protocol != "http/protobuf":
            raise OtelUnavailableError(
                f"OTLP protocol {protocol!r} is not supported; Pilothouse exports "
                "http/protobuf (set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf and use "
                "the collector's HTTP port, usually 4318)"
            )
        headers = _parse_pairs(environ.get("OTEL_EXPORTER_OTLP_HEADERS", ""))
        headers.update(_parse_pairs(environ.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "")))
        options: dict[str, Any] = {
            "endpoint": endpoint,
            "headers": headers,
            "capture_content": capture_content_enabled(environ),
            "service_name": environ.get("OTEL_SERVICE_NAME", "").strip() or "pilothouse",
            "resource_attributes": _parse_pairs(environ.get("OTEL_RESOURCE_ATTRIBUTES", "")),
        }
        options.update(overrides)
        return cls(**options)

    def export(self, spans: Sequence[Span]) -> None:
        for span in spans:
            self._processor.on_end(self._readable(span))

    def flush(self, timeout_s: float = 10.0) -> bool:
        return bool(self._processor.force_flush(int(timeout_s * 1000)))

    def close(self) -> None:
        self._processor.shutdown()

    def _readable(self, span: Span) -> ReadableSpan:
        from opentelemetry.sdk.trace import Event, ReadableSpan
        from opentelemetry.trace import SpanContext, SpanKind, TraceFlags
        from opentelemetry.trace.status import Status, StatusCode

        mapped = genai_span(span, capture_content=self.capture_content)
        flags = TraceFlags(TraceFlags.SAMPLED)
        trace_id = int(span.trace_id, 16)
        context = SpanContext(trace_id, int(span.span_id, 16), is_remote=False, trace_flags=flags)
        parent = (
            SpanContext(trace_id, int(span.parent_id, 16), is_remote=False, trace_flags=flags)
            if span.parent_id
            else None
        )
        start_ns = int(span.start_time * 1e9)
        end_ns = start_ns + int((span.duration_s or 0.0) * 1e9)
        status = Status(StatusCode.ERROR, mapped.error) if mapped.error is not None else Status()
        return ReadableSpan(
            name=mapped.name,
            context=context,
            parent=parent,
            resource=self._resource,
            attributes=mapped.attributes,
            events=[Event(n, a, int(t * 1e9)) for n, t, a in mapped.events],
            kind=SpanKind.CLIENT if mapped.kind == "client" else SpanKind.INTERNAL,
            status=status,
            start_time=start_ns,
            end_time=end_ns,
            instrumentation_scope=self._scope,
        )
