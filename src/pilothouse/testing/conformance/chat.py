"""The chat-model conformance suite: what every `Model` does (the contract checks
here), and what every protocol adapter does on the wire (chat_wire.py).

Run it on an adapter against a fake of its vendor (`VendorSubject`), or on any model
built from a script (`ScriptSubject`: the test doubles and the wrappers):

    report = await CHAT_MODELS.validate(lambda: VendorSubject.serve(spec, tmp_path))
    report.raise_for_failures()
"""

from __future__ import annotations

from typing import Any, Protocol

from pilothouse.errors import ModelError, RateLimitedError, UnavailableError
from pilothouse.models.base import Model, collect
from pilothouse.testing.conformance.chat_subjects import (
    FINISH_REASONS,
    PARALLEL_TOOLS,
    TOOLS,
    TYPED_ERRORS,
    USAGE,
)
from pilothouse.testing.conformance.suite import Suite, expect
from pilothouse.testing.wire import Call, CutStream, Fail, Reply, Step
from pilothouse.types import (
    Message,
    ModelRequest,
    ModelResponse,
    StreamEnd,
    StreamError,
    TextDelta,
    ToolSpec,
)


class ChatSubject(Protocol):
    @property
    def capabilities(self) -> frozenset[str]: ...

    @property
    def model_id(self) -> str: ...

    def model(self, *steps: Step, **options: Any) -> Model: ...


CHAT_MODELS: Suite[Any] = Suite(
    "chat models", "the Model interface, its stream contract and, for adapters, the wire"
)

WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
        "required": ["city"],
    },
)
TIME = ToolSpec(
    "get_time",
    "Local time in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}},
)


def ask(text: str = "What is the capital of France?", **options: Any) -> ModelRequest:
    return ModelRequest((Message.system("Be brief."), Message.user(text)), **options)


async def answer(model: Model, request: ModelRequest, *, streaming: bool) -> ModelResponse:
    try:
        return await (collect(model.stream(request)) if streaming else model.complete(request))
    finally:
        await model.aclose()


# --- answers -----------------------------------------------------------------------


@CHAT_MODELS.check()
async def check_answers_with_text_finish_usage_and_model(subject: ChatSubject) -> None:
    """complete() gives the text, finish reason `stop`, usage and the answering model."""
    model = subject.model(Reply("Paris.", usage=(21, 3, 5)))
    response = await answer(model, ask(), streaming=False)
    assert response.text == "Paris.", response.text
    assert response.finish_reason == "stop", response.finish_reason
    assert response.model == subject.model_id, response.model
    assert response.latency_s >= 0
    assert response.usage.input_tokens >= 0 and response.usage.output_tokens >= 0
    if USAGE in subject.capabilities:
        assert (response.usage.input_tokens, response.usage.output_tokens) == (21, 3)


@CHAT_MODELS.check()
async def check_streams_deltas_then_the_whole_answer(subject: ChatSubject) -> None:
    """stream() gives text deltas, then `StreamEnd` whose answer is the deltas joined."""
    model = subject.model(Reply("The capital is Paris.", chunks=4, usage=(30, 6, 0)))
    try:
        events = [e async for e in model.stream(ask())]
    finally:
        await model.aclose()
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) >= 2, f"the answer came in {len(deltas)} delta(s), not streamed"
    assert "".join(deltas) == "The capital is Paris."
    end = events[-1]
    assert isinstance(end, StreamEnd), f"the stream ended with {type(end).__name__}"
    assert end.response.text == "The capital is Paris."
    assert end.response.finish_reason == "stop"
    assert sum(isinstance(e, StreamEnd | StreamError) for e in events) == 1
    if USAGE in subject.capabilities:
        assert end.response.usage.output_tokens == 6


@CHAT_MODELS.check(FINISH_REASONS)
async def check_a_length_finish_is_reported(subject: ChatSubject) -> None:
    """An answer cut by the output limit says `length`."""
    response = await answer(
        subject.model(Reply("The capital", finish="length")), ask(), streaming=True
    )
    assert response.finish_reason == "length", response.finish_reason


@CHAT_MODELS.check()
async def check_can_be_closed_twice(subject: ChatSubject) -> None:
    """aclose() releases what the model holds and is safe to call again."""
    model = subject.model(Reply("ok"))
    await model.complete(ask())
    await model.aclose()
    await model.aclose()


# --- tools -------------------------------------------------------------------------


@CHAT_MODELS.check(TOOLS)
async def check_a_tool_call_is_returned(subject: ChatSubject) -> None:
    """A tool call comes back with its name, arguments, an id and finish `tool_calls`."""
    model = subject.model(Reply(tool_calls=(Call("call_1", "get_weather", {"city": "Oslo"}),)))
    response = await answer(model, ask("Weather in Oslo?", tools=(WEATHER,)), streaming=False)
    assert response.finish_reason == "tool_calls", response.finish_reason
    [call] = response.tool_calls
    assert (call.name, call.arguments) == ("get_weather", {"city": "Oslo"})
    assert call.id


async def _parallel(subject: ChatSubject, *, streaming: bool) -> None:
    model = subject.model(
        Reply(
            tool_calls=(
                Call("call_a", "get_weather", {"city": "Oslo", "unit": "C"}),
                Call("call_b", "get_time", {"city": "Lima"}),
            )
        )
    )
    request = ask("Weather in Oslo and time in Lima?", tools=(WEATHER, TIME))
    response = await answer(model, request, streaming=streaming)
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("get_weather", {"city": "Oslo", "unit": "C"}),
        ("get_time", {"city": "Lima"}),
    ]
    assert len({c.id for c in response.tool_calls}) == 2, "tool call ids must differ"
    assert response.finish_reason == "tool_calls"


@CHAT_MODELS.check(PARALLEL_TOOLS)
async def check_parallel_tool_calls(subject: ChatSubject) -> None:
    """Several tool calls in one answer keep their order, arguments and distinct ids."""
    await _parallel(subject, streaming=False)


@CHAT_MODELS.check(PARALLEL_TOOLS)
async def check_parallel_tool_calls_streamed(subject: ChatSubject) -> None:
    """The same, streamed."""
    await _parallel(subject, streaming=True)


# --- failures ----------------------------------------------------------------------


async def _fails_before_content(subject: ChatSubject, *, streaming: bool) -> None:
    model = subject.model(Fail(503, "The server had an error"))
    typed = TYPED_ERRORS in subject.capabilities
    with expect(UnavailableError if typed else ModelError) as caught:
        await answer(model, ask(), streaming=streaming)
    assert caught.value is not None
    if typed:
        assert caught.value.failover and caught.value.status == 503, "another model could answer"


@CHAT_MODELS.check()
async def check_a_failure_is_raised_as_a_model_error(subject: ChatSubject) -> None:
    """A failure before any content is raised as a `ModelError`; with `typed_errors`, the
    host's error keeps its type and status (a 503 is an `UnavailableError` that allows
    failover)."""
    await _fails_before_content(subject, streaming=False)


@CHAT_MODELS.check()
async def check_a_failure_before_content_is_raised_when_streaming(subject: ChatSubject) -> None:
    """A stream that fails before any content raises, so a caller can fail over
    invisibly."""
    await _fails_before_content(subject, streaming=True)


@CHAT_MODELS.check(TYPED_ERRORS)
async def check_a_rate_limit_carries_retry_after(subject: ChatSubject) -> None:
    """A rate limit is a retryable `RateLimitedError` with the host's Retry-After."""
    model = subject.model(Fail(429, "Rate limit reached", retry_after="7"))
    with expect(RateLimitedError) as caught:
        await answer(model, ask(), streaming=False)
    assert caught.value is not None
    assert caught.value.retry_after == 7 and caught.value.retryable


@CHAT_MODELS.check()
async def check_a_stream_cut_midway_ends_with_an_error_event(subject: ChatSubject) -> None:
    """After content, a failure ends the stream with `StreamError` carrying the partial
    answer: never a silent truncation, never a `StreamEnd`."""
    model = subject.model(CutStream("The capital is", abrupt=True))
    try:
        events = [e async for e in model.stream(ask())]
    finally:
        await model.aclose()
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "The capital is"
    last = events[-1]
    assert isinstance(last, StreamError), "a cut stream must never look complete"
    assert isinstance(last.error, ModelError)
    assert last.partial.text == "The capital is"
    assert not any(isinstance(e, StreamEnd) for e in events)
