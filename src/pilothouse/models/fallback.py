"""A fallback chain: a model that tries its models in order.

It moves on when a model fails with an error that allows failover, or when its answer
is rejected by `accept` (by default the one rule of a usable answer, models/usable.py).
Streaming follows the stream contract (models/base.py): before the first content event
a failure moves to the next model invisibly; after it, the stream ends with the
`StreamError` of the model that broke, unless `continue_streams` is on: then a later
model of the chain that can continue an assistant message (`continues_assistant`)
carries on from the text already sent, after a `StreamContinued` event that says so.
Continuation applies to text only: a stream that had started a tool call ends with
its error as before.

The latency of the answer covers the whole chain: the time lost on failed models is
part of what the caller waited.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace

from pilothouse.errors import (
    AllModelsFailedError,
    MalformedResponseError,
    ModelError,
    ResponseRejectedError,
    UnavailableError,
)
from pilothouse.models.base import (
    Model,
    close_stream,
    continuation_request,
    end_of_stream,
    partial_response,
    with_latency,
)
from pilothouse.models.usable import is_content, unusable
from pilothouse.types import (
    Message,
    ModelRequest,
    ModelResponse,
    StreamContinued,
    StreamEnd,
    StreamError,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCallDelta,
    Usage,
)

log = logging.getLogger(__name__)

# Returns None to accept a response, or the reason it is rejected.
Acceptor = Callable[[ModelResponse], str | None]


def reject_empty(response: ModelResponse) -> str | None:
    """Reject an unusable answer: the rule of models/usable.py (kept under this name)."""
    return unusable(response)


class FallbackModel(Model):
    def __init__(
        self,
        models: Sequence[Model],
        *,
        accept: Acceptor | None = unusable,
        continue_streams: bool = False,
    ):
        if not models:
            raise ValueError("a fallback chain needs at least one model")
        self.models = list(models)
        self.accept = accept
        self.continue_streams = continue_streams
        super().__init__(
            "fallback(" + ",".join(m.id for m in self.models) + ")", self.models[0].profile
        )

    def available(self) -> bool:
        return any(m.available() for m in self.models)

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
        started = time.monotonic()
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
                return replace(response, latency_s=time.monotonic() - started)
            self._note(model, rejection, errors)
        raise AllModelsFailedError(errors, model=self.id)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        started = time.monotonic()
        errors: list[ModelError] = []
        for index, model in enumerate(self.models):
            events = model.stream(request)
            shown: list[str] = []  # the text passed on, once content was sent
            sent_content = False
            sent_calls = False
            held: list[StreamEvent] = []
            broken: StreamError | None = None
            try:
                async for event in events:
                    if isinstance(event, StreamEnd):
                        await end_of_stream(events)  # inner wrappers record the outcome
                        rejection = self._rejection(model, event.response)
                        if rejection is None:
                            for pending in held:
                                yield pending
                            yield with_latency(event, time.monotonic() - started)
                            return
                        if not sent_content:  # nothing shown yet: move on invisibly
                            raise rejection
                        yield with_latency(
                            StreamError(rejection, event.response), time.monotonic() - started
                        )
                        return
                    if isinstance(event, StreamError):
                        await end_of_stream(events)
                        if not sent_content:
                            raise _model_error(event.error, model.id)
                        broken = event
                        break
                    # Hold back events until real content, so a blank answer that is
                    # rejected at the end can still fail over invisibly.
                    held.append(event)
                    sent_content = sent_content or is_content(event)
                    if sent_content:
                        for pending in held:
                            if isinstance(pending, TextDelta):
                                shown.append(pending.text)
                            sent_calls = sent_calls or isinstance(pending, ToolCallDelta)
                            yield pending
                        held.clear()
            except ModelError as error:
                if not error.failover or sent_content:
                    raise
                self._note(model, error, errors)
                continue
            finally:
                await close_stream(events)
            if broken is None:
                # The inner stream ended without a final event: never pass that off as done.
                broken_error = MalformedResponseError(
                    "the stream ended without a final event", model=model.id
                )
                if not sent_content:
                    self._note(model, broken_error, errors)
                    continue
                broken = StreamError(broken_error, partial_response(model.id))
            if self.continue_streams and not sent_calls:
                later = [m for m in self.models[index + 1 :] if m.continues_assistant()]
                async for event in self._continue(request, later, "".join(shown), broken):
                    yield with_latency(event, time.monotonic() - started)
                return
            yield with_latency(broken, time.monotonic() - started)
            return
        raise AllModelsFailedError(errors, model=self.id)

    async def _continue(
        self, request: ModelRequest, models: list[Model], text: str, broken: StreamError
    ) -> AsyncIterator[StreamEvent]:
        """Carry a broken stream on with the first of `models` that starts a
        continuation of `text`; the original `broken` event when none can."""
        follow_up = continuation_request(request, text)
        usage = broken.partial.usage
        for model in models:
            events = model.stream(follow_up)
            started = False
            more: list[str] = []
            try:
                async for event in events:
                    if isinstance(event, StreamEnd | StreamError):
                        await end_of_stream(events)
                    if not started:
                        if isinstance(event, StreamError):
                            raise _model_error(event.error, model.id)
                        log.warning(
                            "stream from %s broke (%s); %s continues it",
                            broken.partial.model,
                            broken.error,
                            model.id,
                        )
                        yield StreamContinued(model.id, broken.error)
                        started = True
                    if isinstance(event, TextDelta):
                        more.append(event.text)
                    if isinstance(event, StreamEnd | StreamError):
                        yield _joined(event, text, more, usage)
                        return
                    yield event
            except ModelError as error:
                if started or not error.failover:
                    raise
                log.warning("%s cannot continue the stream: %s", model.id, error)
                continue
            finally:
                await close_stream(events)
            if started:  # the continuation itself ended without a final event
                cut = MalformedResponseError("the stream ended without a final event")
                yield StreamError(cut, partial_response(model.id))
                return
        yield broken


def _model_error(error: Exception, model_id: str) -> ModelError:
    if isinstance(error, ModelError):
        return error
    return UnavailableError(f"the stream broke: {error}", model=model_id)


def _joined(
    event: StreamEnd | StreamError, text: str, more: list[str], usage: Usage
) -> StreamEnd | StreamError:
    """The final event of a continuation, holding the whole answer: the text sent
    before the break, then the continuation."""
    response = event.response if isinstance(event, StreamEnd) else event.partial
    calls = tuple(p for p in response.message.parts if not isinstance(p, TextPart))
    whole = replace(
        response,
        message=Message("assistant", (TextPart(text + "".join(more)), *calls)),
        usage=Usage(
            usage.input_tokens + response.usage.input_tokens,
            usage.output_tokens + response.usage.output_tokens,
            usage.cached_tokens + response.usage.cached_tokens,
        ),
    )
    if isinstance(event, StreamEnd):
        return StreamEnd(whole)
    return StreamError(event.error, whole)
