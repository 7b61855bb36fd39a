"""Sinks that ship with the tracer: an in-memory one (tests, the Studio's live view)
and a wrapper that moves any sink's work to a background thread."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence

from pilothouse.tracing.spans import Span
from pilothouse.tracing.tracer import SpanSink

logger = logging.getLogger(__name__)


class MemorySink:
    """Keeps every delivered batch in memory, in delivery order."""

    def __init__(self) -> None:
        self.batches: list[list[Span]] = []
        self._lock = threading.Lock()

    def export(self, spans: Sequence[Span]) -> None:
        with self._lock:
            self.batches.append(list(spans))

    @property
    def spans(self) -> list[Span]:
        """Every span delivered so far, batch after batch."""
        with self._lock:
            return [span for batch in self.batches for span in batch]

    def trace(self, trace_id: str) -> list[Span]:
        """The spans of one trace, in start order."""
        return sorted((s for s in self.spans if s.trace_id == trace_id), key=lambda s: s.start_time)

    @property
    def trace_ids(self) -> list[str]:
        """The traces delivered, in the order their first batch arrived."""
        seen: dict[str, None] = {}
        for span in self.spans:
            seen.setdefault(span.trace_id, None)
        return list(seen)


_STOP = object()


class BackgroundSink:
    """Delivers batches to `sink` from one worker thread, so the caller (an event loop)
    never waits for disk or network. Order is kept. `flush` waits until everything
    handed over so far is delivered; `close` flushes and stops the thread. A batch the
    inner sink fails on is logged and dropped. When more than `max_pending` batches
    wait, new ones are dropped (and logged) rather than growing memory without bound.
    """

    def __init__(self, sink: SpanSink, *, max_pending: int = 10_000) -> None:
        self.sink = sink
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_pending)
        self._closed = False
        self._thread = threading.Thread(
            target=self._work, name=f"trace-sink-{type(sink).__name__}", daemon=True
        )
        self._thread.start()

    def export(self, spans: Sequence[Span]) -> None:
        if self._closed:
            logger.warning("trace sink is closed; trace %s dropped", spans[0].trace_id)
            return
        try:
            self._queue.put_nowait(list(spans))
        except queue.Full:
            logger.warning("trace sink backlog is full; trace %s dropped", spans[0].trace_id)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait up to `timeout_s` for the backlog to drain; True when it did."""
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout_s)
        except queue.Full:
            return False
        return done.wait(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        if self._closed:
            return
        self.flush(timeout_s)
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout_s)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            assert isinstance(item, list)
            try:
                self.sink.export(item)
            except Exception:
                logger.warning(
                    "trace sink %s failed; a trace was not recorded there",
                    type(self.sink).__name__,
                    exc_info=True,
                )
