"""A model wrapper that records each call as a span: the exact messages sent, the
model asked, the model that answered, tokens, cost, finish reason, errors.

In a fallback chain every model gets its own span, so a trace shows which models
failed and why before one answered. Each span records how its call ended
(`pilothouse.model.status`): completed, rejected, failed or cancelled. A consumer that
closes the stream once it has the final event does not make the call an error. Inside
it, each try of the model (a hardened model's attempts: its retries, a refusal by its
open breaker) is a span of its own (models/attempts.py).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from pilothouse.models.attempts import AttemptSpans, observing
from pilothouse.models.base import Model, WrapperModel, close_stream
from pilothouse.models.fallback import Acceptor
from pilothouse.tracing import Span, Tracer, is_cancellation
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


class TracedModel(WrapperModel):
    """`inner`, with a span per call. `accept` is the rule of the fallback chain the
    model is an attempt of (None outside a chain): an answer it refuses makes the
    attempt `rejected`, so the span says what the chain did with it."""

    def __init__(self, inner: Model, tracer: Tracer, *, accept: Acceptor | None = None):
        super().__init__(inner)
        self.tracer = tracer
        self.accept = accept

    async def complete(self, request: ModelRequest) -> ModelResponse:
        started = time.monotonic()
        span = self._start(request)
        error: BaseException | None = None
        try:
            with self.tracer.use_span(span), observing(AttemptSpans(self.tracer, span)):
                response = await self.inner.complete(request)
            self._answered(span, response, started)
            return response
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._end(span, error)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        started = time.monotonic()
        span = self._start(request)
        span.set(A.MODEL_STREAM, True)
        events = self.inner.stream(request)
        error: BaseException | None = None
        attempts = AttemptSpans(self.tracer, span)
        try:
            while True:
                # Current while the inner stream runs (its attempts' spans and its
                # retries' `model.retry` events land here), never across a `yield`: the
                # consumer's code between events stays under its own span.
                with self.tracer.use_span(span), observing(attempts):
                    try:
                        event = await anext(events)
                    except StopAsyncIteration:
                        break
                if isinstance(event, StreamEnd):
                    self._answered(span, event.response, started)
                elif isinstance(event, StreamError):
                    _record_response(span, event.partial, started)
                    span.set(A.MODEL_STATUS, "failed")
                    span.fail(event.error)
                yield event
        except BaseException as exc:
            error = exc
            raise
        finally:
            await close_stream(events)
            self._end(span, error)

    def _start(self, request: ModelRequest) -> Span:
        span = self.tracer.start_span(f"chat {self.id}", kind="model")
        span.update(_request_attributes(self.inner, request))
        return span

    def _answered(self, span: Span, response: ModelResponse, started: float) -> None:
        _record_response(span, response, started)
        reason = self.accept(response) if self.accept is not None else None
        if reason is None:
            span.set(A.MODEL_STATUS, "completed")
        else:
            span.set(A.MODEL_STATUS, "rejected")
            span.fail(f"response rejected: {reason}", error_type="ResponseRejectedError")

    def _end(self, span: Span, error: BaseException | None) -> None:
        """An error after the answer came (the consumer closing the stream once it has
        the end) changes nothing; before it, the call failed or was cancelled."""
        if error is not None and A.MODEL_STATUS not in span.attributes:
            if is_cancellation(error):
                span.set(A.MODEL_STATUS, A.CANCELLED)
                span.fail(
                    "cancelled before the answer ended: the caller stopped reading",
                    error_type=A.CANCELLED,
                )
            else:
                span.set(A.MODEL_STATUS, "failed")
                span.fail(error)
        self.tracer.end_span(span)
