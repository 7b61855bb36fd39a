"""The chat-model checks that need a vendor fake (`VendorSubject`, capability `wire`):
how the neutral request is mapped to the wire and the vendor's answers, errors and
streams are read back. The fake's `Echo` step answers with what it understood of the
request (`Facts`), so these checks hold for any wire format."""

from __future__ import annotations

import json

from pilothouse.errors import (
    AuthenticationError,
    MalformedResponseError,
    ModelError,
    ModelTimeoutError,
    UnavailableError,
)
from pilothouse.models.base import collect
from pilothouse.testing.conformance.chat import CHAT_MODELS, TIME, WEATHER, answer, ask
from pilothouse.testing.conformance.chat_subjects import (
    AUTH,
    IMAGES,
    MID_STREAM_ERROR,
    SEED,
    STRUCTURED_OUTPUT,
    WIRE,
    VendorSubject,
)
from pilothouse.testing.conformance.suite import expect
from pilothouse.testing.ports import closed_port
from pilothouse.testing.wire import Echo, Fail, Malformed, MidStreamError, Reply, Stall
from pilothouse.types import (
    ImagePart,
    Message,
    ModelRequest,
    OutputSchema,
    StreamEnd,
    StreamError,
    TextDelta,
    ToolCallPart,
    ToolResultPart,
)


async def echo_facts(subject: VendorSubject, request: ModelRequest) -> dict[str, object]:
    """What the vendor's fake understood of `request`."""
    response = await answer(subject.model(Echo()), request, streaming=False)
    facts: dict[str, object] = json.loads(response.text)
    return facts


# --- the request -------------------------------------------------------------------


@CHAT_MODELS.check(WIRE)
async def check_request_options_are_mapped(subject: VendorSubject) -> None:
    """System prompt, messages, temperature, output limit, stop (and seed) reach the
    vendor."""
    request = ask(
        "Name three rivers.", temperature=0.25, max_output_tokens=77, stop=("END",), seed=7
    )
    facts = await echo_facts(subject, request)
    assert facts["system"] == "Be brief."
    assert facts["messages"] == [["user", "Name three rivers."]]
    assert facts["temperature"] == 0.25
    assert facts["max_tokens"] == 77
    assert facts["stop"] == ["END"]
    if SEED in subject.capabilities:
        assert facts["seed"] == 7


@CHAT_MODELS.check(WIRE)
async def check_a_multi_turn_history_keeps_roles_in_order(subject: VendorSubject) -> None:
    """Earlier turns are sent in order with their roles."""
    request = ModelRequest(
        (
            Message.system("You are terse."),
            Message.user("Hi"),
            Message.assistant("Hello."),
            Message.user("Bye"),
        )
    )
    facts = await echo_facts(subject, request)
    assert facts["system"] == "You are terse."
    assert facts["messages"] == [["user", "Hi"], ["assistant", "Hello."], ["user", "Bye"]]


@CHAT_MODELS.check(WIRE, IMAGES)
async def check_images_are_sent(subject: VendorSubject) -> None:
    """An image part reaches the vendor."""
    image = ImagePart(data="iVBORw0KGgo=", media_type="image/png")
    facts = await echo_facts(subject, ModelRequest((Message.user("What is this?", image),)))
    assert facts["images"] == 1


@CHAT_MODELS.check(WIRE)
async def check_tools_and_tool_choice_are_sent(subject: VendorSubject) -> None:
    """Tool specs (names, parameters) and the tool choice reach the vendor."""
    facts = await echo_facts(subject, ask("Weather?", tools=(WEATHER, TIME), tool_choice="auto"))
    assert facts["tools"] == ["get_weather", "get_time"]
    assert facts["tool_params"] == [["city", "unit"], ["city"]]
    assert facts["tool_choice"] in ("auto", None)
    facts = await echo_facts(subject, ask("Weather?", tools=(WEATHER,), tool_choice="required"))
    assert facts["tool_choice"] == "required"
    facts = await echo_facts(
        subject, ask("Weather?", tools=(WEATHER, TIME), tool_choice="get_time")
    )
    assert facts["tool_choice"] == "get_time"


@CHAT_MODELS.check(WIRE)
async def check_tool_results_round_trip(subject: VendorSubject) -> None:
    """Earlier tool calls and their results are sent back in the vendor's format."""
    calls = (
        ToolCallPart("call_a", "get_weather", {"city": "Oslo"}),
        ToolCallPart("call_b", "get_time", {"city": "Lima"}),
    )
    request = ModelRequest(
        (
            Message.user("Weather in Oslo and time in Lima?"),
            Message.assistant("", calls),
            Message.tool(
                ToolResultPart("call_a", "get_weather", "4 C, rain"),
                ToolResultPart("call_b", "get_time", "09:15"),
            ),
        ),
        tools=(WEATHER, TIME),
    )
    facts = await echo_facts(subject, request)
    assert facts["assistant_tool_calls"] == [
        ["get_weather", '{"city":"Oslo"}'],
        ["get_time", '{"city":"Lima"}'],
    ]
    results = facts["tool_results"]
    assert isinstance(results, list)
    assert [r[1] for r in results] == ["4 C, rain", "09:15"]
    assert [r[0] for r in results] in (["call_a", "call_b"], ["get_weather", "get_time"])


@CHAT_MODELS.check(WIRE, STRUCTURED_OUTPUT)
async def check_an_output_schema_is_sent_and_json_comes_back(subject: VendorSubject) -> None:
    """The output schema reaches the vendor; the JSON answer parses."""
    schema = OutputSchema(
        {
            "type": "object",
            "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
            "required": ["city", "country"],
            "additionalProperties": False,
        },
        name="capital",
    )
    facts = await echo_facts(subject, ask(output_schema=schema))
    assert facts["schema_properties"] == ["city", "country"]
    model = subject.model(Reply('{"city": "Paris", "country": "France"}'))
    response = await answer(model, ask(output_schema=schema), streaming=False)
    assert response.json() == {"city": "Paris", "country": "France"}


# --- keys --------------------------------------------------------------------------


async def _wrong_key(subject: VendorSubject, *, streaming: bool) -> None:
    model = subject.model(key="sk-wrong-secret-123")
    with expect(AuthenticationError) as caught:
        await answer(model, ask(), streaming=streaming)
    assert caught.value is not None
    assert "sk-wrong-secret-123" not in str(caught.value), "the key is in the error"
    assert "sk-wrong-secret-123" not in repr(model)
    assert caught.value.status == 401


@CHAT_MODELS.check(WIRE, AUTH)
async def check_a_wrong_key_is_an_authentication_error_without_the_key(
    subject: VendorSubject,
) -> None:
    """A refused key is an `AuthenticationError` (401) that never shows the key."""
    await _wrong_key(subject, streaming=False)


@CHAT_MODELS.check(WIRE, AUTH)
async def check_a_wrong_key_is_refused_when_streaming(subject: VendorSubject) -> None:
    """The same, streamed."""
    await _wrong_key(subject, streaming=True)


@CHAT_MODELS.check(WIRE, AUTH)
async def check_the_key_travels_only_in_the_auth_header(subject: VendorSubject) -> None:
    """The key is in a header, never in the URL or the body."""
    model = subject.model(Reply("ok"), key="sk-live-abc")
    await answer(model, ask(), streaming=False)
    assert "sk-live-abc" not in subject.fake.paths[-1]
    assert any("sk-live-abc" in value for value in subject.fake.headers[-1].values())
    assert "sk-live-abc" not in json.dumps(subject.fake.requests[-1])


# --- HTTP failures -----------------------------------------------------------------


@CHAT_MODELS.check(WIRE)
async def check_a_rate_limit_is_read_when_streaming(subject: VendorSubject) -> None:
    """A 429 to a streamed request carries the Retry-After too."""
    from pilothouse.errors import RateLimitedError

    model = subject.model(Fail(429, "Rate limit reached", retry_after="7"))
    with expect(RateLimitedError) as caught:
        await answer(model, ask(), streaming=True)
    assert caught.value is not None and caught.value.retry_after == 7


@CHAT_MODELS.check(WIRE)
async def check_server_errors_are_unavailable(subject: VendorSubject) -> None:
    """500 and 503 are `UnavailableError`s with the status, and allow failover."""
    for status in (500, 503):
        model = subject.model(Fail(status, "The server had an error"))
        with expect(UnavailableError) as caught:
            await answer(model, ask(), streaming=False)
        assert caught.value is not None
        assert caught.value.status == status and caught.value.failover


@CHAT_MODELS.check(WIRE)
async def check_a_bad_request_is_not_retryable(subject: VendorSubject) -> None:
    """A 400 is not retried, and says what the vendor said."""
    model = subject.model(Fail(400, "Invalid value for 'temperature'"))
    with expect(ModelError) as caught:
        await answer(model, ask(), streaming=False)
    assert caught.value is not None and not caught.value.retryable
    assert "temperature" in str(caught.value)


@CHAT_MODELS.check(WIRE)
async def check_a_refused_connection_is_unavailable(subject: VendorSubject) -> None:
    """Nothing listening is `UnavailableError`, streamed or not."""
    model = subject.model(base_url=f"http://127.0.0.1:{closed_port()}")
    with expect(UnavailableError):
        await model.complete(ask())
    with expect(UnavailableError):
        await collect(model.stream(ask()))
    await model.aclose()


@CHAT_MODELS.check(WIRE)
async def check_no_answer_in_time_is_a_timeout(subject: VendorSubject) -> None:
    """A host that does not answer within the timeout gives `ModelTimeoutError`."""
    model = subject.model(Stall(seconds=3), timeout_s=0.5)
    with expect(ModelTimeoutError):
        await answer(model, ask(), streaming=False)


@CHAT_MODELS.check(WIRE)
async def check_malformed_json_is_a_malformed_response(subject: VendorSubject) -> None:
    """A body that is not the vendor's format is `MalformedResponseError`."""
    with expect(MalformedResponseError):
        await answer(subject.model(Malformed()), ask(), streaming=False)


@CHAT_MODELS.check(WIRE)
async def check_a_malformed_stream_before_content_raises(subject: VendorSubject) -> None:
    """A stream that is not the vendor's format, before content, raises."""
    with expect(MalformedResponseError):
        await answer(subject.model(Malformed()), ask(), streaming=True)


@CHAT_MODELS.check(WIRE)
async def check_a_stream_without_its_end_marker_ends_with_an_error_event(
    subject: VendorSubject,
) -> None:
    """A stream whose body ends cleanly but without the vendor's end marker is cut."""
    from pilothouse.testing.wire import CutStream

    model = subject.model(CutStream("The capital is", abrupt=False))
    try:
        events = [e async for e in model.stream(ask())]
    finally:
        await model.aclose()
    last = events[-1]
    assert isinstance(last, StreamError), "a cut stream must never look complete"
    assert isinstance(last.error, UnavailableError | MalformedResponseError)
    assert last.partial.text == "The capital is"


@CHAT_MODELS.check(WIRE)
async def check_a_stalled_stream_after_content_ends_with_a_timeout_event(
    subject: VendorSubject,
) -> None:
    """A stream that goes silent after content ends with `StreamError(ModelTimeoutError)`.
    The same limit bounds the wait for the first bytes, which a busy machine can miss
    (a timeout raised before any content); the check then runs again with the limit
    doubled, up to `STALL_LIMITS_S[-1]`: it is about the silence after content."""
    for limit in STALL_LIMITS_S:
        events = await _stalled_after_content(subject, limit)
        if events is not None:
            break
    else:
        raise AssertionError(
            f"no content before a timeout of {STALL_LIMITS_S[-1]:g}s: the adapter must "
            "give the stream's content as it arrives"
        )
    last = events[-1]
    assert isinstance(last, StreamError) and isinstance(last.error, ModelTimeoutError)
    assert not any(isinstance(e, StreamEnd) for e in events)


STALL_LIMITS_S = (0.5, 1.0, 2.0, 4.0)
"""The stalled-stream check's time limits, tried in turn while no content came in time."""


async def _stalled_after_content(subject: VendorSubject, limit: float) -> list[object] | None:
    """The events of a stream that stalls after content under `limit`; None when the
    limit ran out before any content (a busy machine, or an adapter that holds it back)."""
    model = subject.model(Stall("The capital", seconds=60), timeout_s=limit)
    events: list[object] = []
    try:
        async for event in model.stream(ask()):
            events.append(event)
    except ModelTimeoutError:
        if any(isinstance(e, TextDelta) for e in events):
            raise AssertionError(
                "a stall after content raised: it must end the stream with a StreamError"
            ) from None
        return None
    finally:
        await model.aclose()
    return events


@CHAT_MODELS.check(WIRE)
async def check_a_stalled_stream_before_content_raises_a_timeout(subject: VendorSubject) -> None:
    """A stream silent from the start raises `ModelTimeoutError`."""
    model = subject.model(Stall("", seconds=3), timeout_s=0.5)
    with expect(ModelTimeoutError):
        await answer(model, ask(), streaming=True)


@CHAT_MODELS.check(WIRE, MID_STREAM_ERROR)
async def check_a_vendor_error_event_mid_stream(subject: VendorSubject) -> None:
    """The vendor's documented in-stream error event ends the stream with its message."""
    model = subject.model(MidStreamError("The capital", "Overloaded"))
    try:
        events = [e async for e in model.stream(ask())]
    finally:
        await model.aclose()
    last = events[-1]
    assert isinstance(last, StreamError) and isinstance(last.error, ModelError)
    assert "Overloaded" in str(last.error)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "The capital"
