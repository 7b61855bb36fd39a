"""A model wrapper that records each call as a span: the exact messages sent, the
model asked, the model that answered, tokens, cost, finish reason, errors.

In a fallback chain every attempt gets its own span, so a trace shows which models
failed and why before one answered.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from pilothouse.models.base import Model, close_stream
from pilothouse.tracing import Span, Tracer
from pilothouse.tracing import attributes as A
from pilothouse.types import (
    ModelRequest,
    ModelResponse,
    StreamEnd,
    StreamError,
    StreamEvent,
    message_to_dict,
)


def _request_attributes(model: Model, request: ModelRequest) -> dict[str, Any]:
    return {
        A.REQUEST_MODEL: model.id,
        A.REQUEST_TEMPERATURE: request.temperature,
        A.REQUEST_MAX_TOKENS: request.max_output_tokens,
        A.PROMPT_VARIANT: model.profile.family,
        A.REQUEST_MESSAGES: [message_to_dict(m) for m in request.messages],
        A.REQUEST_TOOLS: [t.name for t in request.tools],
        "pilothouse.request.tool_choice": request.tool_choice,
    }


def _record_response(span: Span, response: ModelResponse, started: float) -> None:
    span.update(
        {
            A.RESPONSE_MODEL: response.model,
            A.FINISH_REASONS: [response.finish_reason],
            A.USAGE_INPUT_TOKENS: response.usage.input_tokens,
            A.USAGE_OUTPUT_TOKENS: response.usage.output_tokens,
            A.USAGE_CACHED_TOKENS: response.usage.cached_tokens,
            A.COST_USD: response.cost_usd,
            A.RESPONSE_MESSAGE: message_to_dict(response.message),
            "pilothouse.latency_s": time.monotonic() - started,
        }
    )


class TracedModel(Model):
    def __init__(self, inner: Model, tracer: Tracer):
        super().__init__(inner.id, inner.profile)
        self.inner = inner
        self.tracer = tracer

    async def complete(self, request: ModelRequest) -> ModelResponse:
        started = time.monotonic()
        with self.tracer.span(f"chat {self.id}", kind="model") as span:
            span.update(_request_attributes(self.inner, request))
            response = await self.inner.complete(request)
            _record_response(span, response, started)
            return response

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        started = time.monotonic()
        # Not made current: the span has no children, and a stream's `with` would span
        # the consumer's code between events.
        span = self.tracer.start_span(f"chat {self.id}", kind="model")
        span.update(_request_attributes(self.inner, request))
        span.set(A.MODEL_STREAM, True)
        events = self.inner.stream(request)
        error: BaseException | None = None
        try:
            async for event in events:
                if isinstance(event, StreamEnd):
                    _record_response(span, event.response, started)
                elif isinstance(event, StreamError):
                    _record_response(span, event.partial, started)
                    error = event.error
                yield event
        except BaseException as exc:
            error = exc
            raise
        finally:
            await close_stream(events)
            self.tracer.end_span(span, error)

    async def aclose(self) -> None:
        await self.inner.aclose()
