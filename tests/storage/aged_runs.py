"""Runs and runless traces written with chosen times, for retention tests (the tracer
always stamps the current time)."""

from __future__ import annotations

import time
from typing import Any

from pilothouse.storage.traces import TraceStore
from pilothouse.tracing import Span
from pilothouse.tracing.spans import new_span_id, new_trace_id

DAY = 86_400.0


def days_ago(days: float) -> float:
    return time.time() - days * DAY


def record_run(
    store: TraceStore,
    started: float,
    ended: float | None,
    *,
    children: int = 2,
    attributes: dict[str, Any] | None = None,
) -> str:
    """A run (root span) from `started` to `ended` (None: never ended) with `children`
    model spans inside it; returns the run id."""
    trace_id = new_trace_id()
    root = Span(
        trace_id,
        new_span_id(),
        None,
        "invoke_agent helpdesk",
        kind="run",
        start_time=started,
        end_time=ended,
        duration_s=None if ended is None else ended - started,
        attributes={"gen_ai.agent.name": "helpdesk", **(attributes or {})},
    )
    spans = [root]
    for i in range(children):
        spans.append(
            Span(
                trace_id,
                new_span_id(),
                root.span_id,
                "chat",
                kind="model",
                start_time=started + i,
                end_time=started + i + 0.5,
                duration_s=0.5,
            )
        )
    store.export(spans)
    return trace_id


def record_orphan(store: TraceStore, *times: float) -> str:
    """A trace whose root never arrived: one span per start time; returns its id."""
    trace_id = new_trace_id()
    parent = new_span_id()  # a root that was never written
    store.export(
        [
            Span(trace_id, new_span_id(), parent, "tool", kind="tool", start_time=t, end_time=t + 1)
            for t in times
        ]
    )
    return trace_id
