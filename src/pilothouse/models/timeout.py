"""Time limits around any model, with one meaning on every path (the gateway's route
`timeout` settings are the same four):

- `connect_s`: opening the connection to the provider (applied by the HTTP adapters'
  client; see `compose.harden`);
- `first_byte_s`: a stream, until its first event (a slow start fails over invisibly);
- `idle_s`: a stream, between two events (a stalled stream);
- `total_s`: the whole answer, JSON or stream. A JSON answer has no first byte before
  it is complete, so only this limit (and `connect_s`) bounds it.

A limit hit before content raises `ModelTimeoutError`; after content the stream ends
with a `StreamError` carrying it. `None` turns a limit off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pilothouse.errors import ModelTimeoutError
from pilothouse.models.base import Model, StreamAssembler, WrapperModel, close_stream
from pilothouse.types import (
    ModelRequest,
    ModelResponse,
    StreamEnd,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageEvent,
)

# The defaults, for the gateway's routes (server/gateway/routes.py) and the Python API and CLI.
CONNECT_S = 10.0
FIRST_BYTE_S = 60.0
IDLE_S = 60.0
TOTAL_S = 600.0


@dataclass(frozen=True, slots=True)
class TimeoutPolicy:
    connect_s: float | None = CONNECT_S
    first_byte_s: float | None = FIRST_BYTE_S
    idle_s: float | None = IDLE_S
    total_s: float | None = TOTAL_S


NO_LIMITS = TimeoutPolicy(None, None, None, None)


class TimeoutModel(WrapperModel):
    def __init__(self, inner: Model, policy: TimeoutPolicy):
        super().__init__(inner)
        self.policy = policy

    async def complete(self, request: ModelRequest) -> ModelResponse:
        if self.policy.total_s is None:
            return await self.inner.complete(request)
        try:
            async with asyncio.timeout(self.policy.total_s):
                return await self.inner.complete(request)
        except TimeoutError:
            raise ModelTimeoutError(
                f"no answer within {self.policy.total_s:g}s (total_s)", model=self.id
            ) from None

    def _limit(self, started: float, sent_content: bool) -> tuple[float | None, str]:
        """The seconds the next event may take, and what limit that is."""
        limits: list[tuple[float, str]] = []
        if self.policy.total_s is not None:
            limits.append(
                (
                    self.policy.total_s - (time.monotonic() - started),
                    f"{self.policy.total_s:g}s in total (total_s)",
                )
            )
        gap = self.policy.idle_s if sent_content else self.policy.first_byte_s
        if gap is not None:
            what = (
                "between events (idle_s)" if sent_content else "to the first event (first_byte_s)"
            )
            limits.append((gap, f"{gap:g}s {what}"))
        if not limits:
            return None, ""
        seconds, what = min(limits)
        return max(seconds, 0.0), what

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        started = time.monotonic()
        events = self.inner.stream(request)
        asm = StreamAssembler()
        try:
            while True:
                seconds, what = self._limit(started, asm.content_seen)
                try:
                    event = await asyncio.wait_for(anext(events), seconds)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    error = ModelTimeoutError(f"stream exceeded {what}", model=self.id)
                    if not asm.content_seen:
                        raise error from None
                    partial = asm.message()
                    yield StreamError(
                        error,
                        ModelResponse(
                            partial, "error", asm.usage, self.id, time.monotonic() - started
                        ),
                    )
                    return
                if isinstance(event, TextDelta | ToolCallDelta | UsageEvent):
                    asm.feed(event)
                if isinstance(event, StreamEnd | StreamError):
                    await _rest(events, seconds)
                    yield event
                    return
                yield event
        finally:
            await close_stream(events)


async def _rest(events: AsyncIterator[StreamEvent], seconds: float | None) -> None:
    """Let the inner stream end by itself after its last event (see
    `base.end_of_stream`), within the time left."""
    try:
        async with asyncio.timeout(seconds):
            async for _ in events:
                pass
    except TimeoutError:
        pass
