"""Tracing: every run as a tree of spans (retrieval, model calls, tool calls, ...),
stored locally and exported as OpenTelemetry GenAI spans when configured.

Layer 0: imports nothing from the rest of Pilothouse. The OpenTelemetry exporter is in
`pilothouse.tracing.otel` (optional extra `otel`); the SQLite store is in
`pilothouse.storage.traces`.
"""

from pilothouse.tracing import attributes
from pilothouse.tracing.redaction import (
    MASK,
    RedactingFilter,
    Redactor,
    install_log_redaction,
    remove_log_redaction,
)
from pilothouse.tracing.sinks import BackgroundSink, MemorySink
from pilothouse.tracing.spans import (
    SPAN_KINDS,
    JSONValue,
    Span,
    SpanEvent,
    SpanKind,
    SpanStatus,
    is_cancellation,
    to_json_value,
)
from pilothouse.tracing.tracer import SpanSink, Tracer, current_span

__all__ = [
    "MASK",
    "SPAN_KINDS",
    "BackgroundSink",
    "JSONValue",
    "MemorySink",
    "RedactingFilter",
    "Redactor",
    "Span",
    "SpanEvent",
    "SpanKind",
    "SpanSink",
    "SpanStatus",
    "Tracer",
    "attributes",
    "current_span",
    "install_log_redaction",
    "is_cancellation",
    "remove_log_redaction",
    "to_json_value",
]
