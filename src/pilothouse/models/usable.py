"""What counts as a usable answer: one rule for every path (the Python API, copilots,
and the gateway, whose fast path applies it to OpenAI's wire format in
openai_chat/usable.py).

- A whole answer is usable when it carries non-blank text (a refusal is text: the model
  did answer) or at least one tool call, or when it stopped because the caller's
  output limit ran out (`finish_reason` "length"): an answer cut to nothing by
  `max_tokens` is the caller's choice, not a failing model.
- A stream is committed to its caller at its first content event: a text delta that is
  not blank, or a tool-call delta. Until then nothing is passed on (role-only,
  whitespace and usage events are held back), so a stream that ends blank, breaks or
  stalls before content is still a failure that can move to another model invisibly.

Anything else is a failure of the model that gave it: `EmptyAnswerError` for a blank
answer, `MalformedResponseError` (raised by the adapters) for a body or stream that
does not follow the protocol, the typed error for an error object inside a 200. Each
counts against the model's circuit breaker, and a fallback chain moves on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from pilothouse.errors import EmptyAnswerError, ModelError, UnavailableError
from pilothouse.models.base import WrapperModel, close_stream, end_of_stream
from pilothouse.types import (
    FinishReason,
    Message,
    ModelRequest,
    ModelResponse,
    StreamEnd,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)


def answer_problem(message: Message, finish_reason: FinishReason) -> str | None:
    """None when an answer is usable, else what is wrong with it."""
    if message.tool_calls or message.text.strip() or finish_reason == "length":
        return None
    if finish_reason == "content_filter":
        return "the answer is empty: the provider's content filter stopped it"
    return "the answer is empty"


def unusable(response: ModelResponse) -> str | None:
    """`answer_problem` of a whole response; the fallback chain's default acceptor."""
    return answer_problem(response.message, response.finish_reason)


def is_content(event: StreamEvent) -> bool:
    """Whether `event` commits a stream to its caller (see the module docstring)."""
    if isinstance(event, TextDelta):
        return bool(event.text.strip())
    return isinstance(event, ToolCallDelta)


class UsableAnswerModel(WrapperModel):
    """Raises `EmptyAnswerError` for an unusable answer, and holds a stream back until
    its first content, so everything wrapped around it (retries, the circuit breaker,
    a fallback chain) sees an unusable answer as the failure it is."""

    async def complete(self, request: ModelRequest) -> ModelResponse:
        response = await self.inner.complete(request)
        problem = unusable(response)
        if problem is not None:
            raise EmptyAnswerError(problem, model=response.model or self.id)
        return response

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        events = self.inner.stream(request)
        held: list[StreamEvent] | None = []  # None once content was passed on
        try:
            async for event in events:
                if isinstance(event, StreamEnd | StreamError):
                    await end_of_stream(events)
                    if held is not None:
                        failure = _failure_before_content(event, self.id)
                        if failure is not None:
                            raise failure  # nothing was passed on: fail, invisibly
                        for pending in held:
                            yield pending
                    yield event
                    return
                if held is None:
                    yield event
                    continue
                held.append(event)
                if is_content(event):
                    for pending in held:
                        yield pending
                    held = None
            for pending in held or ():  # no final event: the caller reports that
                yield pending
        finally:
            await close_stream(events)


def _failure_before_content(event: StreamEnd | StreamError, model_id: str) -> ModelError | None:
    """The failure a stream ending before any content is, or None for a usable one
    (an answer cut to nothing by the caller's output limit)."""
    if isinstance(event, StreamError):
        error = event.error
        if isinstance(error, ModelError):
            return error
        return UnavailableError(f"the stream broke: {error}", model=model_id)
    response = event.response
    problem = unusable(response)
    if problem is None:
        return None
    return EmptyAnswerError(problem, model=response.model or model_id)
