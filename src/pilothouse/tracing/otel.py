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

The mapping from Pilothouse spans (see attributes.py) is `genai_span` in genai.py,
plain Python with no OpenTelemetry import.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from pilothouse.tracing.genai import (
    genai_span,
)
from pilothouse.tracing.spans import Span

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = [
    "CAPTURE_CONTENT_ENV",
    "INSTRUMENTATION_NAME",
    "OtelSink",
    "OtelUnavailableError",
    "capture_content_enabled",
    "otlp_traces_endpoint",
]

logger = logging.getLogger(__name__)

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURE_ON = {"true", "1", "yes", "on", "span_only", "span_and_event"}
INSTRUMENTATION_NAME = "pilothouse"


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
