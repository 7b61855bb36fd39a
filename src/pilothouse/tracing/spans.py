"""The span model: one timed step of a run (the run itself, a retrieval, a model call,
a tool call, an approval, a memory step), with its attributes and events.

A span is plain data. It is created and ended by a `Tracer` (see tracer.py), stored by
a sink, and rebuilt from storage with `Span.from_dict`. Times are wall-clock epoch
seconds (`start_time`, `end_time`, for display and ordering) plus a monotonic duration
(`duration_s`, immune to clock changes, what every figure about speed uses).
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, get_args

SpanKind = Literal[
    "run", "retrieval", "model", "tool", "approval", "memory", "decision", "guard", "other"
]
SpanStatus = Literal["ok", "error"]
SPAN_KINDS: tuple[str, ...] = get_args(SpanKind)

JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None
"""What an attribute value may be: anything `json.dumps` writes without help."""

DEFAULT_MAX_VALUE_CHARS = 100_000
"""Longer strings in attributes are cut to this many characters, with a visible marker."""


def is_cancellation(error: BaseException) -> bool:
    """True for the ways work is stopped from outside rather than failing: a stream
    closed before its end (`GeneratorExit`), a cancelled task, Ctrl-C."""
    return isinstance(error, GeneratorExit | asyncio.CancelledError | KeyboardInterrupt)


def new_trace_id() -> str:
    """32 lowercase hex digits (16 random bytes), the OpenTelemetry trace id format."""
    return secrets.token_hex(16)


def new_span_id() -> str:
    """16 lowercase hex digits (8 random bytes), the OpenTelemetry span id format."""
    return secrets.token_hex(8)


@dataclass(slots=True)
class SpanEvent:
    """Something that happened at one moment inside a span (a retry, a fallback, the
    first token of a stream)."""

    name: str
    time: float
    attributes: dict[str, JSONValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "time": self.time, "attributes": self.attributes}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpanEvent:
        return cls(str(data["name"]), float(data["time"]), dict(data.get("attributes") or {}))


Processor: TypeAlias = Callable[[str, Any], JSONValue]
"""Turns (key, raw value) into the value stored: JSON coercion plus redaction."""


def _identity(key: str, value: Any) -> JSONValue:
    return to_json_value(value)


@dataclass(slots=True, eq=False)
class Span:
    """One timed step of a trace.

    Open spans come from `Tracer.span(...)`; `end_time` and `duration_s` are None until
    the span ends. Every attribute value goes through the tracer's processor (JSON
    coercion, length cap, secret redaction) when it is set, so a span never holds an
    unredacted secret, not even briefly.
    """

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: SpanKind = "other"
    start_time: float = field(default_factory=time.time)
    end_time: float | None = None
    duration_s: float | None = None
    status: SpanStatus = "ok"
    error: str | None = None
    error_type: str | None = None
    attributes: dict[str, JSONValue] = field(default_factory=dict)
    events: list[SpanEvent] = field(default_factory=list)
    _start_monotonic: float = field(default_factory=time.perf_counter, repr=False)
    _process: Processor = field(default=_identity, repr=False)

    # --- recording ----------------------------------------------------------------

    def set(self, key: str, value: Any) -> Span:
        """Set one attribute (JSON-able value; see `to_json_value`). Returns the span."""
        self.attributes[key] = self._process(key, value)
        return self

    def update(self, attributes: Mapping[str, Any]) -> Span:
        """Set several attributes at once."""
        for key, value in attributes.items():
            self.set(key, value)
        return self

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None) -> Span:
        """Record a moment inside the span, stamped with the current wall-clock time."""
        processed = {k: self._process(k, v) for k, v in (attributes or {}).items()}
        self.events.append(SpanEvent(name, time.time(), processed))
        return self

    def fail(self, error: BaseException | str, *, error_type: str | None = None) -> Span:
        """Mark the span failed without raising (for errors the code handles, such as a
        tool that raised and whose error goes back to the model)."""
        self.status = "error"
        if isinstance(error, BaseException):
            text = str(error) or type(error).__name__
            self.error_type = error_type or type(error).__name__
        else:
            text = error
            self.error_type = error_type
        masked = self._process("error", text)
        self.error = masked if isinstance(masked, str) else text
        return self

    # --- state --------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self.end_time is not None

    @property
    def is_root(self) -> bool:
        return self.parent_id is None

    def _finish(self) -> None:
        self.duration_s = max(0.0, time.perf_counter() - self._start_monotonic)
        self.end_time = self.start_time + self.duration_s

    # --- plain data ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "name": self.name,
            "kind": self.kind,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "duration_s": self.duration_s,
            "status": self.status,
            "error": self.error,
            "error_type": self.error_type,
            "attributes": self.attributes,
            "events": [e.to_dict() for e in self.events],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Span:
        kind = data.get("kind", "other")
        status = data.get("status", "ok")
        return cls(
            trace_id=str(data["trace_id"]),
            span_id=str(data["span_id"]),
            parent_id=data.get("parent_id"),
            name=str(data["name"]),
            kind=kind if kind in SPAN_KINDS else "other",
            start_time=float(data["start_time"]),
            end_time=None if data.get("end_time") is None else float(data["end_time"]),
            duration_s=None if data.get("duration_s") is None else float(data["duration_s"]),
            status="error" if status == "error" else "ok",
            error=data.get("error"),
            error_type=data.get("error_type"),
            attributes=dict(data.get("attributes") or {}),
            events=[SpanEvent.from_dict(e) for e in data.get("events") or []],
        )


def to_json_value(value: Any, *, max_chars: int = DEFAULT_MAX_VALUE_CHARS) -> JSONValue:
    """Coerce `value` to something `json.dumps` accepts, without losing information
    silently where it can be kept:

    - None, bool, int, str pass (strings longer than `max_chars` are cut, ending in a
      visible `…[N more characters]` marker);
    - finite floats pass; NaN and infinities become the strings "nan", "inf", "-inf";
    - mappings become dicts with string keys; lists, tuples, sets become lists;
    - bytes become a placeholder naming their length (never their content);
    - anything else becomes `str(value)`.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        if len(value) > max_chars:
            return value[:max_chars] + f"…[{len(value) - max_chars} more characters]"
        return value
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v, max_chars=max_chars) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [to_json_value(v, max_chars=max_chars) for v in items]
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    return to_json_value(str(value), max_chars=max_chars)
