"""A fallback chain: a model that tries its models in order.

It moves on when a model fails with an error that allows failover, or when its answer
is rejected by `accept`. Streaming follows the stream contract (models/base.py):
before the first content event a failure moves to the next model invisibly; after it,
the stream ends with the `StreamError` of the model that broke.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence

from pilothouse.errors import (
    AllModelsFailedError,
    MalformedResponseError,
    ModelError,
    ResponseRejectedError,
)
from pilothouse.models.base import Model, close_stream, partial_response
from pilothouse.types import (
    ModelRequest,
    ModelResponse,
    StreamEnd,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)

log = logging.getLogger(__name__)

# Returns None to accept a response, or the reason it is rejected.
Acceptor = Callable[[ModelResponse], str | None]


def reject_empty(response: ModelResponse) -> str | None:
    """Reject an answer with neither text nor tool calls."""
    if not response.text.strip() and not response.tool_calls:
        return "the answer is empty"
    return None


def _is_content(event: StreamEvent) -> bool:
    if isinstance(event, TextDelta):
        return bool(event.text.strip())
    return isinstance(event, ToolCallDelta)


class FallbackModel(Model):
    def __init__(self, models: Sequence[Model], *, accept: Acceptor | None = reject_empty):
        if not models:
            raise ValueError("a fallback chain needs at least one model")
        self.models = list(models)
        self.accept = accept
        super().__init__(
            "fallback(" + ",".join(m.id for m in self.models) + ")", self.models[0].profile
        )

    def _rejection(self, model: Model, response: ModelResponse) -> ResponseRejectedError | None:
        reason = self.accept(response) if self.accept else None
        if reason is None:
            return None
        return ResponseRejectedError(f"response rejected: {reason}", model=model.id)

    def _note(self, model: Model, error: ModelError, errors: list[ModelError]) -> None:
        errors.append(error)
        log.warning(
            "model %s failed (%s: %s); trying the next", model.id, type(error).__name__, error
        )

    async def complete(self, request: ModelRequest) -> ModelResponse:
        errors: list[ModelError] = []
        for model in self.models:
            try:
                response = await model.complete(request)
            except ModelError as error:
                if not error.failover:
                    raise
                self._note(model, error, errors)
                continue
            rejection = self._rejection(model, response)
            if rejection is None:
                return response
            self._note(model, rejection, errors)
        raise AllModelsFailedError(errors, model=self.id)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        errors: list[ModelError] = []
        for model in self.models:
            events = model.stream(request)
            sent_content = False
            held: list[StreamEvent] = []
            try:
                async for event in events:
                    if isinstance(event, StreamEnd):
                        rejection = self._rejection(model, event.response)
                        if rejection is None:
                            for pending in held:
                                yield pending
                            yield event
                            return
                        if not sent_content:  # nothing shown yet: move on invisibly
                            raise rejection
                        yield StreamError(rejection, event.response)
                        return
                    if isinstance(event, StreamError):
                        if not sent_content:
                            raise event.error
                        yield event  # content was already shown: say it broke, stop
                        return
                    # Hold back events until real content, so a blank answer that is
                    # rejected at the end can still fail over invisibly.
                    held.append(event)
                    if _is_content(event):
                        sent_content = True
                    if sent_content:
                        for pending in held:
                            yield pending
                        held.clear()
            except ModelError as error:
                if not error.failover or sent_content:
                    raise
                self._note(model, error, errors)
                continue
            finally:
                await close_stream(events)
            # The inner stream ended without a final event: never pass that off as done.
            broken = MalformedResponseError(
                "the stream ended without a final event", model=model.id
            )
            if sent_content:
                yield StreamError(broken, partial_response(model.id))
                return
            self._note(model, broken, errors)
        raise AllModelsFailedError(errors, model=self.id)

    async def aclose(self) -> None:
        for model in self.models:
            await model.aclose()
