"""Time limits around any model.

`total_s` bounds a whole call; `first_event_s` bounds the wait for the first streamed
event (a slow start fails over invisibly); `idle_s` bounds the gap between events (a
stalled stream). A limit hit before content raises `ModelTimeoutError`; after content
the stream ends with a `StreamError` carrying it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pilothouse.errors import ModelTimeoutError
from pilothouse.models.base import Model, StreamAssembler, close_stream
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


@dataclass(frozen=True, slots=True)
class TimeoutPolicy:
    total_s: float | None = None
    first_event_s: float | None = None
    idle_s: float | None = None


class TimeoutModel(Model):
    def __init__(self, inner: Model, policy: TimeoutPolicy):
        super().__init__(inner.id, inner.profile)
        self.inner = inner
        self.policy = policy

    async def complete(self, request: ModelRequest) -> ModelResponse:
        if self.policy.total_s is None:
            return await self.inner.complete(request)
        try:
            async with asyncio.timeout(self.policy.total_s):
                return await self.inner.complete(request)
        except TimeoutError:
            raise ModelTimeoutError(
                f"no answer within {self.policy.total_s:g}s", model=self.id
            ) from None

    def _limit(self, started: float, sent_content: bool) -> tuple[float | None, str]:
        """The seconds the next event may take, and what limit that is."""
        limits: list[tuple[float, str]] = []
        if self.policy.total_s is not None:
            limits.append(
                (
                    self.policy.total_s - (time.monotonic() - started),
                    f"{self.policy.total_s:g}s total",
                )
            )
        gap = self.policy.idle_s if sent_content else self.policy.first_event_s
        if gap is not None:
            what = "between events" if sent_content else "to the first event"
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
                yield event
                if isinstance(event, StreamEnd | StreamError):
                    return
        finally:
            await close_stream(events)

    async def aclose(self) -> None:
        await self.inner.aclose()
