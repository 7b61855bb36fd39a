"""`EmulatedToolsModel`: tools for any model that can follow an output JSON schema."""

from __future__ import annotations

from collections.abc import AsyncIterator

from pilothouse.models.base import AdapterEvent, Finish, Model, ProtocolModel
from pilothouse.models.emulation.plan import emulate_tools
from pilothouse.models.profiles import ModelProfile
from pilothouse.types import (
    ModelRequest,
    StreamEnd,
    StreamError,
    TextDelta,
    ToolCallDelta,
    UsageEvent,
)


class EmulatedToolsModel(ProtocolModel):
    """Gives tools to `inner`, a model that follows output JSON schemas but has no
    native tool calling (an OpenAI-compatible local server, for example)."""

    def __init__(self, inner: Model, *, profile: ModelProfile | None = None):
        super().__init__(inner.id, profile or inner.profile)
        self.inner = inner

    async def _stream(self, request: ModelRequest) -> AsyncIterator[AdapterEvent]:
        emulation = emulate_tools(
            request,
            parallel_tools=self.profile.parallel_tools,
            answer_first=self.profile.emulation_answer_first,
        )
        async for event in emulation.decode(self._inner_events(emulation.request)):
            yield event

    async def _inner_events(self, request: ModelRequest) -> AsyncIterator[AdapterEvent]:
        async for event in self.inner.stream(request):
            if isinstance(event, StreamEnd):
                reason = event.response.finish_reason
                yield Finish("stop" if reason == "tool_calls" else reason)
                return
            if isinstance(event, StreamError):
                raise event.error
            if isinstance(event, TextDelta | ToolCallDelta | UsageEvent):
                yield event

    def runs_here(self) -> bool:
        return self.inner.runs_here()

    def available(self) -> bool:
        return self.inner.available()

    async def aclose(self) -> None:
        await self.inner.aclose()
