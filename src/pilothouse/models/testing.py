"""Deterministic models for tests, shipped with the package so every layer above can
be tested without network or weights.

- `ScriptedModel` plays back a list of turns, one per call, and records the requests.
- `FunctionModel` answers with a function of the request.

Both stream their answers as real deltas through the same contract as the adapters,
and a turn may be an exception (raised before content) or a `BreakAfter` (a stream
that fails after some content).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeAlias

from pilothouse.errors import ModelError
from pilothouse.models.base import AdapterEvent, Finish, ProtocolModel
from pilothouse.models.profiles import ModelProfile
from pilothouse.types import (
    FinishReason,
    Message,
    ModelRequest,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
    UsageEvent,
)


@dataclass(frozen=True, slots=True)
class BreakAfter:
    """Stream `text` then fail with `error`, as a provider that drops mid-answer."""

    text: str
    error: ModelError


Turn: TypeAlias = str | Message | ModelError | BreakAfter
TurnFunction: TypeAlias = Callable[[ModelRequest], "Turn | Awaitable[Turn]"]


def tool_call(name: str, arguments: dict[str, object] | None = None, id: str = "") -> Message:
    """An assistant message that calls one tool: a convenient scripted turn."""
    return Message("assistant", (ToolCallPart(id or f"call_{name}", name, dict(arguments or {})),))


def _chunks(text: str, size: int) -> Iterable[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


class _DoubleModel(ProtocolModel):
    """Shared playback: turns a `Turn` into stream events."""

    def __init__(
        self,
        model_id: str,
        *,
        chunk_size: int = 4,
        delay_s: float = 0.0,
        profile: ModelProfile | None = None,
        continues: bool = False,
    ):
        super().__init__(model_id, profile or ModelProfile(family="test", input_price=None))
        self.chunk_size = chunk_size
        self.delay_s = delay_s
        self.continues = continues
        self.requests: list[ModelRequest] = []

    def continues_assistant(self) -> bool:
        """`continues=True`: the double plays a model with assistant prefill."""
        return self.continues

    async def _turn(self, request: ModelRequest) -> Turn:
        raise NotImplementedError

    async def _stream(self, request: ModelRequest) -> AsyncIterator[AdapterEvent]:
        self.requests.append(request)
        turn = await self._turn(request)
        if isinstance(turn, ModelError):
            raise turn
        text = turn.text if isinstance(turn, BreakAfter | Message) else turn
        for piece in _chunks(text, self.chunk_size):
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            yield TextDelta(piece)
        if isinstance(turn, BreakAfter):
            raise turn.error
        calls = turn.tool_calls if isinstance(turn, Message) else []
        for index, call in enumerate(calls):
            yield ToolCallDelta(index, call.id, call.name, call.arguments_json)
        prompt_words = sum(len(m.text.split()) for m in request.messages)
        yield UsageEvent(Usage(prompt_words, len(text.split()) + len(calls)))
        reason: FinishReason = "tool_calls" if calls else "stop"
        yield Finish(reason)


class ScriptedModel(_DoubleModel):
    """Answers with `turns[0]`, then `turns[1]`, ...; raises when the script runs out."""

    def __init__(self, turns: Iterable[Turn], model_id: str = "test:scripted", **kwargs: object):
        super().__init__(model_id, **kwargs)  # type: ignore[arg-type]
        self.turns = list(turns)

    async def _turn(self, request: ModelRequest) -> Turn:
        if not self.turns:
            raise AssertionError(f"{self.id}: the script has no turn left for this call")
        return self.turns.pop(0)


class FunctionModel(_DoubleModel):
    """Answers with `function(request)` (sync or async)."""

    def __init__(self, function: TurnFunction, model_id: str = "test:function", **kwargs: object):
        super().__init__(model_id, **kwargs)  # type: ignore[arg-type]
        self.function = function

    async def _turn(self, request: ModelRequest) -> Turn:
        result = self.function(request)
        if isinstance(result, Awaitable):
            result = await result
        return result


def echo_last_user(request: ModelRequest) -> Turn:
    """A FunctionModel body that repeats the last user text."""
    for message in reversed(request.messages):
        if message.role == "user":
            return Message("assistant", (TextPart(message.text),))
    return ""
