"""The tracer: starts spans as context managers, tracks the current span per task with
`contextvars`, gathers the finished spans of each trace, and hands a finished trace to
its sinks.

    tracer = Tracer([store, otel_sink])
    with tracer.span("helpdesk", kind="run", attributes={...}) as run:
        with tracer.span("chat", kind="model") as call:
            call.set("gen_ai.usage.input_tokens", 120)

- Parents come from the context: a span started inside another (in the same task, or
  in a task created inside it: `asyncio.gather`, `create_task`, `asyncio.to_thread`)
  is its child. Two runs in two tasks never mix. `parent=` overrides the context.
- A span that leaves its `with` block by an exception is marked `error` (type and
  message recorded) and the exception propagates unchanged. `asyncio.CancelledError`,
  `KeyboardInterrupt` and `GeneratorExit` are recorded as errors too.
- A trace is handed to the sinks, in one call, when its root span (the one without a
  parent) ends: every span of the trace that ended before it, in start order. A span
  that ends after its root (work left running in the background) is handed on its own,
  in a later call for the same trace; sinks must accept that.
- A sink that raises is logged and skipped: tracing never breaks the traced code.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pilothouse.tracing.redaction import Redactor
from pilothouse.tracing.spans import SPAN_KINDS, Span, SpanKind, new_span_id, new_trace_id

logger = logging.getLogger(__name__)

_current: ContextVar[Span | None] = ContextVar("pilothouse_current_span", default=None)


def current_span() -> Span | None:
    """The innermost open span of the running task (None outside any span)."""
    return _current.get()


@runtime_checkable
class SpanSink(Protocol):
    """Receives finished spans, one trace (or a late part of one) per call.

    `export` is called on the thread that ended the root span, often the event loop's:
    keep it quick, or wrap the sink in `BackgroundSink`.
    """

    def export(self, spans: Sequence[Span]) -> None: ...


@dataclass(slots=True)
class _TraceState:
    finished: list[Span] = field(default_factory=list)


class Tracer:
    """Creates spans and delivers finished traces to `sinks`.

    `redactor` decides what is stored for each attribute (JSON coercion, length cap,
    secret masking); the default masks secret-looking keys only. A tracer holds no
    global state: make one per application (or per test) and pass it down.
    """

    def __init__(self, sinks: Iterable[SpanSink] = (), *, redactor: Redactor | None = None):
        self._sinks: list[SpanSink] = list(sinks)
        self.redactor = redactor or Redactor()
        self._traces: dict[str, _TraceState] = {}
        self._lock = threading.Lock()

    # --- sinks --------------------------------------------------------------------

    @property
    def sinks(self) -> tuple[SpanSink, ...]:
        return tuple(self._sinks)

    def add_sink(self, sink: SpanSink) -> None:
        self._sinks.append(sink)

    def flush(self, timeout_s: float = 10.0) -> None:
        """Ask every sink that buffers (has a `flush` method) to deliver what it holds."""
        for sink in self._sinks:
            flush = getattr(sink, "flush", None)
            if callable(flush):
                try:
                    flush(timeout_s)
                except Exception:
                    logger.warning(
                        "trace sink %s failed to flush", type(sink).__name__, exc_info=True
                    )

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush, then close every sink that has a `close` method."""
        self.flush(timeout_s)
        for sink in self._sinks:
            close = getattr(sink, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    logger.warning(
                        "trace sink %s failed to close", type(sink).__name__, exc_info=True
                    )

    # --- spans --------------------------------------------------------------------

    @contextmanager
    def span(
        self,
        name: str,
        *,
        kind: SpanKind = "other",
        attributes: Mapping[str, Any] | None = None,
        parent: Span | None = None,
        root: bool = False,
    ) -> Iterator[Span]:
        """Open a span for the duration of a `with` block and make it the current one.

        `parent` overrides the context's current span; `root=True` starts a new trace
        even inside another span. Works in sync and async code alike (the span is
        current for the block and for tasks created inside it).
        """
        span = self.start_span(name, kind=kind, attributes=attributes, parent=parent, root=root)
        token = _current.set(span)
        try:
            yield span
        except GeneratorExit:
            # An async generator (a stream) closed before its end: the consumer stopped.
            span.fail(
                "closed before the end (the consumer stopped reading)", error_type="GeneratorExit"
            )
            raise
        except BaseException as exc:
            span.fail(exc)
            raise
        finally:
            _restore(token, span)
            self.end_span(span)

    @contextmanager
    def use_span(self, span: Span) -> Iterator[Span]:
        """Make an open span (from `start_span`) the current one for a block, without
        ending it or judging how the block ended: for code that decides a span's
        status itself and ends it with `end_span`."""
        token = _current.set(span)
        try:
            yield span
        finally:
            _restore(token, span)

    def start_span(
        self,
        name: str,
        *,
        kind: SpanKind = "other",
        attributes: Mapping[str, Any] | None = None,
        parent: Span | None = None,
        root: bool = False,
        start_time: float | None = None,
    ) -> Span:
        """Start a span without making it current; end it with `end_span`. For spans
        whose start and end are in different places (a callback, a stream).
        `start_time` (wall-clock epoch seconds, not in the future) backdates it, for
        work that began before its span was needed."""
        if kind not in SPAN_KINDS:
            raise ValueError(f"span kind {kind!r} is not one of {', '.join(SPAN_KINDS)}")
        if parent is None and not root:
            parent = _current.get()
        if parent is not None and not root:
            trace_id, parent_id = parent.trace_id, parent.span_id
        else:
            trace_id, parent_id = new_trace_id(), None
        span = Span(trace_id, new_span_id(), parent_id, name, kind, _process=self.redactor)
        if start_time is not None:
            earlier = max(0.0, span.start_time - start_time)
            span.start_time -= earlier
            span._start_monotonic -= earlier
        if attributes:
            span.update(attributes)
        if parent_id is None:
            with self._lock:
                self._traces[trace_id] = _TraceState()
        return span

    def end_span(self, span: Span, error: BaseException | str | None = None) -> None:
        """End `span` (once; later calls do nothing) and deliver what is complete."""
        if span.ended:
            return
        if error is not None:
            span.fail(error)
        span._finish()
        self._collect(span)

    def record_span(
        self,
        name: str,
        *,
        kind: SpanKind = "other",
        start_time: float,
        duration_s: float,
        attributes: Mapping[str, Any] | None = None,
        error: BaseException | str | None = None,
        error_type: str | None = None,
        parent: Span | None = None,
    ) -> Span:
        """Record a span after the fact, for work timed elsewhere (tool calls run by a
        helper that measured them): `start_time` is wall-clock epoch seconds,
        `duration_s` the measured duration. The parent is `parent` or the current span.
        `error_type` names the error's kind (by default its class name). Returns the
        ended span."""
        span = self.start_span(name, kind=kind, attributes=attributes, parent=parent)
        span.start_time = start_time
        span.duration_s = max(0.0, duration_s)
        span.end_time = start_time + span.duration_s
        if error is not None:
            span.fail(error, error_type=error_type)
        self._collect(span)
        return span

    def _collect(self, span: Span) -> None:
        with self._lock:
            state = self._traces.get(span.trace_id)
            if span.is_root:
                self._traces.pop(span.trace_id, None)
                batch = [*(state.finished if state else []), span]
            elif state is not None:
                state.finished.append(span)
                return
            else:
                batch = [span]  # ended after its root: delivered late, on its own
        batch.sort(key=lambda s: s.start_time)
        self._deliver(batch)

    def _deliver(self, batch: Sequence[Span]) -> None:
        for sink in self._sinks:
            try:
                sink.export(batch)
            except Exception:
                logger.warning(
                    "trace sink %s failed; trace %s not recorded there",
                    type(sink).__name__,
                    batch[0].trace_id,
                    exc_info=True,
                )

    @property
    def open_traces(self) -> int:
        """Traces whose root span has not ended yet (for tests and health checks)."""
        with self._lock:
            return len(self._traces)


def _restore(token: Any, span: Span) -> None:
    """Make the span's parent current again. Resetting fails when the block is left in
    another context than it was entered (an async generator closed by the garbage
    collector); then only a context that still shows this span is corrected."""
    try:
        _current.reset(token)
    except ValueError:
        if _current.get() is span:
            _current.set(None)
