"""A real OTLP/HTTP traces receiver for tests: POST /v1/traces with a protobuf body
(optionally gzip), decoded with the official `opentelemetry-proto` messages."""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def any_value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which) if which else None


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    kind: int
    attributes: dict[str, Any]
    status_code: int
    status_message: str
    start_ns: int
    end_ns: int
    events: list[tuple[str, dict[str, Any]]]
    resource: dict[str, Any]
    scope: str


@dataclass
class OtlpReceiver:
    spans: list[ReceivedSpan] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/traces", self._traces, methods=["POST"])])

    def by_name(self) -> dict[str, ReceivedSpan]:
        return {s.name: s for s in self.spans}

    async def _traces(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        if content_type != "application/x-protobuf":
            self.rejected.append(content_type)
            return Response("expected application/x-protobuf", status_code=415)
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        self.headers.append(dict(request.headers))
        for resource_spans in message.resource_spans:
            resource = {a.key: any_value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        ReceivedSpan(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex() or None,
                            kind=span.kind,
                            attributes={a.key: any_value(a.value) for a in span.attributes},
                            status_code=span.status.code,
                            status_message=span.status.message,
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                            events=[
                                (e.name, {a.key: any_value(a.value) for a in e.attributes})
                                for e in span.events
                            ],
                            resource=resource,
                            scope=scope_spans.scope.name,
                        )
                    )
        self.arrived.set()
        return Response(
            ExportTraceServiceResponse().SerializeToString(),
            media_type="application/x-protobuf",
        )
