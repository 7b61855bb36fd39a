"""The one interface every model has, and the stream contract behind it.

An adapter implements `_stream` (and optionally `_complete`). It yields text and
tool-call deltas, usage, and finally a `Finish`; it raises a typed `ModelError` on
failure. `Model.stream` turns that into the public contract:

- a failure before any content is raised, so a caller (a fallback chain) can move to
  another model invisibly;
- a failure after content ends the stream with a `StreamError` event carrying the
  partial answer; a stream that stops without `Finish` is such a failure. Never a
  silent truncation.

A request that cannot fit the model's context window (models/context.py) is refused
with `ContextTooLongError` before anything is sent.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from pilothouse.errors import MalformedResponseError, ModelError
from pilothouse.models.context import check_fits
from pilothouse.models.profiles import ModelProfile, profile_for
from pilothouse.types import (
    FinishReason,
    Message,
    ModelRequest,
    ModelResponse,
    Part,
    StreamEnd,
    StreamError,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
    UsageEvent,
    parse_tool_arguments,
)


@dataclass(frozen=True, slots=True)
class Finish:
    """Adapter-internal last event: the provider said the answer is complete."""

    reason: FinishReason
    kind: str = "finish"


AdapterEvent = TextDelta | ToolCallDelta | UsageEvent | Finish


@dataclass(slots=True)
class Completion:
    """What an adapter's non-streaming call returns; `Model` adds latency and cost."""

    message: Message
    finish_reason: FinishReason
    usage: Usage
    model: str | None = None


@dataclass
class _PendingCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class StreamAssembler:
    """Builds the whole message from stream deltas."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, _PendingCall] = {}
        self.usage = Usage()
        self.content_seen = False

    def feed(self, event: AdapterEvent) -> None:
        if isinstance(event, TextDelta):
            self.text.append(event.text)
            self.content_seen = self.content_seen or bool(event.text)
        elif isinstance(event, ToolCallDelta):
            call = self.calls.setdefault(event.index, _PendingCall())
            call.id = event.id or call.id
            call.name = event.name or call.name
            call.arguments.append(event.arguments_delta)
            self.content_seen = True
        elif isinstance(event, UsageEvent):
            # Providers report cumulative usage; the latest non-zero figures win.
            u = event.usage
            self.usage = Usage(
                u.input_tokens or self.usage.input_tokens,
                u.output_tokens or self.usage.output_tokens,
                u.cached_tokens or self.usage.cached_tokens,
            )

    def message(self) -> Message:
        parts: list[Part] = []
        text = "".join(self.text)
        if text:
            parts.append(TextPart(text))
        for index in sorted(self.calls):
            call = self.calls[index]
            args, raw = parse_tool_arguments("".join(call.arguments))
            parts.append(
                ToolCallPart(
                    id=call.id or f"call_{index}", name=call.name, arguments=args, raw_arguments=raw
                )
            )
        return Message("assistant", tuple(parts))


class Model(ABC):
    """A chat model: a protocol adapter, or a composition wrapping other models."""

    def __init__(self, model_id: str, profile: ModelProfile | None = None):
        self.id = model_id
        self.profile = profile or profile_for(model_id)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"

    @abstractmethod
    async def complete(self, request: ModelRequest) -> ModelResponse:
        """The whole answer, or a typed `ModelError`."""

    @abstractmethod
    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Events ending in `StreamEnd`, or `StreamError` after content was sent; a
        failure before any content is raised instead."""

    def available(self) -> bool:
        """False when a call would be refused at once without trying (an open circuit),
        so a caller can move on instead of waiting to retry."""
        return True

    def continues_assistant(self) -> bool:
        """Whether a request whose last message is an assistant message is answered by
        continuing that message (assistant prefill), as a broken stream's continuation
        needs (`continuation_request`)."""
        return False

    def runs_here(self) -> bool:
        """Whether the model computes in this process (the embedded local model): it
        cannot hang like a remote host, it is as fast as the machine, so the
        resilience policy's time limits are not put on it."""
        return False

    async def aclose(self) -> None:  # noqa: B027 - most models hold nothing to release
        """Release connections or loaded weights. Safe to call twice."""


class WrapperModel(Model):
    """A model around one other model (a retry, timeout or breaker policy, a prompt,
    a trace): it takes the inner model's id and profile, forwards every call it does
    not change, and closes the inner model with itself."""

    def __init__(self, inner: Model, profile: ModelProfile | None = None) -> None:
        super().__init__(inner.id, profile or inner.profile)
        self.inner = inner

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return await self.inner.complete(request)

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        return self.inner.stream(request)

    def available(self) -> bool:
        return self.inner.available()

    def continues_assistant(self) -> bool:
        return self.inner.continues_assistant()

    def runs_here(self) -> bool:
        return self.inner.runs_here()

    async def aclose(self) -> None:
        await self.inner.aclose()


class ProtocolModel(Model):
    """Base of the adapters that speak one provider protocol."""

    # --- what adapters implement ---------------------------------------------------

    @abstractmethod
    def _stream(self, request: ModelRequest) -> AsyncIterator[AdapterEvent]:
        """Yield deltas, usage and a final `Finish`; raise `ModelError` on failure."""

    async def _complete(self, request: ModelRequest) -> Completion:
        """Non-streaming call. By default the stream, assembled."""
        asm = StreamAssembler()
        finish: FinishReason | None = None
        async for event in self._stream(request):
            if isinstance(event, Finish):
                finish = event.reason
                break
            asm.feed(event)
        if finish is None:
            raise MalformedResponseError("the response ended before it was complete", model=self.id)
        message = asm.message()
        if finish == "stop" and message.tool_calls:
            finish = "tool_calls"
        return Completion(message, finish, asm.usage)

    def _mask(self, error: ModelError) -> ModelError:
        """The error as callers see it: an adapter masks its own credentials in it (a
        host may echo the key it refused; see models/http.py). In place."""
        return error

    # --- the public interface ------------------------------------------------------

    async def complete(self, request: ModelRequest) -> ModelResponse:
        check_fits(request, self.profile, self.id)
        started = time.monotonic()
        try:
            done = await self._complete(request)
        except ModelError as error:
            self._mask(error)
            raise
        return self._response(done, started)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        check_fits(request, self.profile, self.id)
        started = time.monotonic()
        asm = StreamAssembler()
        finish: FinishReason | None = None
        try:
            async for event in self._stream(request):
                if isinstance(event, Finish):
                    finish = event.reason
                    break
                asm.feed(event)
                yield event
            if finish is None:
                raise MalformedResponseError(
                    "the stream ended before the model finished its answer", model=self.id
                )
        except ModelError as error:
            self._mask(error)
            if not asm.content_seen:
                raise
            partial = self._response(Completion(asm.message(), "error", asm.usage), started)
            yield StreamError(error, partial)
            return
        message = asm.message()
        if finish == "stop" and message.tool_calls:
            finish = "tool_calls"
        yield StreamEnd(self._response(Completion(message, finish, asm.usage), started))

    def _response(self, done: Completion, started: float) -> ModelResponse:
        return ModelResponse(
            message=done.message,
            finish_reason=done.finish_reason,
            usage=done.usage,
            model=done.model or self.id,
            latency_s=time.monotonic() - started,
            cost_usd=self.profile.cost(done.usage),
        )


async def close_stream(events: AsyncIterator[StreamEvent]) -> None:
    """Close a stream early so the producer releases its connection or slot."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


async def end_of_stream(events: AsyncIterator[StreamEvent]) -> None:
    """Let a stream that gave its last event (`StreamEnd` or `StreamError`) end by
    itself before passing that event on, so every wrapper inside it (a circuit
    breaker, a trace span) sees a normal end and records its outcome, even when the
    caller stops reading at the last event. Anything after the last event is dropped."""
    async for _ in events:
        pass


def continuation_request(request: ModelRequest, text: str) -> ModelRequest:
    """`request` with the answer so far as its last (assistant) message, for a model
    that `continues_assistant` to carry on from."""
    return replace(request, messages=(*request.messages, Message("assistant", (TextPart(text),))))


def with_latency(event: StreamEvent, latency_s: float) -> StreamEvent:
    """A stream's final event with `latency_s` as its answer's latency (a wrapper that
    took longer than the model inside it: retries, a fallback chain); others as they are."""
    if isinstance(event, StreamEnd):
        return StreamEnd(replace(event.response, latency_s=latency_s))
    if isinstance(event, StreamError):
        return StreamError(event.error, replace(event.partial, latency_s=latency_s))
    return event


def partial_response(model_id: str) -> ModelResponse:
    """An empty placeholder answer for a stream that broke without telling what it had."""
    return ModelResponse(Message("assistant", ()), "error", Usage(), model_id)


async def collect(events: AsyncIterator[StreamEvent]) -> ModelResponse:
    """Drain a stream into its final response; raise the error of a broken stream."""
    async for event in events:
        if isinstance(event, StreamEnd):
            return event.response
        if isinstance(event, StreamError):
            raise event.error
    raise MalformedResponseError("the stream ended without a final event")


def dump_json(value: object) -> str:
    """Compact JSON as providers expect it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
