"""The tracer an application uses: runs stored in the data directory, and exported as
OpenTelemetry GenAI spans when an OTLP endpoint is configured."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from pilothouse.config import Settings
from pilothouse.storage.secrets import redactor_for
from pilothouse.storage.traces import TraceStore
from pilothouse.tracing import BackgroundSink, Redactor, SpanSink, Tracer

logger = logging.getLogger(__name__)


def open_tracer(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    background: bool = False,
    redactor: Redactor | None = None,
    extra_sinks: Iterable[SpanSink] = (),
) -> Tracer:
    """A tracer that stores every run in the data directory and, when an OTLP endpoint
    is configured in the environment (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
    `OTEL_EXPORTER_OTLP_ENDPOINT`), also exports it as OpenTelemetry GenAI spans.

    `background=True` writes to SQLite from a worker thread (servers); call
    `tracer.close()` before exit so nothing waiting is lost. The OTLP exporter always
    sends from its own thread. If an endpoint is configured but the `otel` extra is not
    installed, a warning says so and runs are still stored locally.
    """
    env = dict(settings.environ if environ is None else environ)
    store: SpanSink = TraceStore.for_settings(settings)
    sinks: list[SpanSink] = [BackgroundSink(store) if background else store]
    from pilothouse.tracing import otel

    if otel.otlp_traces_endpoint(env) is not None:
        try:
            sinks.append(otel.OtelSink.from_environ(env))
        except otel.OtelUnavailableError as exc:
            logger.warning("%s", exc)
    sinks.extend(extra_sinks)
    return Tracer(sinks, redactor=redactor or redactor_for(settings))
