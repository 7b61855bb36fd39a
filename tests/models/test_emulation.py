"""Tool calls and structured output emulated with constrained JSON, checked with the
package's test doubles standing in for a model without native tools."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from pilothouse.errors import BadRequestError, MalformedResponseError
from pilothouse.models.base import collect
from pilothouse.models.emulation import (
    ANSWER_OR_CALL_REMINDER,
    CALL_REMINDER,
    ERROR_REMINDER,
    RESULT_REMINDER,
    EmulatedToolsModel,
    EnvelopeDecoder,
    emulate_tools,
    render_history,
)
from pilothouse.models.testing import FunctionModel, ScriptedModel
from pilothouse.types import (
    Message,
    ModelRequest,
    OutputSchema,
    StreamEnd,
    TextDelta,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)

WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
ADD = ToolSpec(
    "add",
    "Add two integers.",
    {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
        "additionalProperties": False,
    },
)


def ask(text: str = "What's the weather in Paris?", **kwargs: Any) -> ModelRequest:
    return ModelRequest((Message.system("Be helpful."), Message.user(text)), **kwargs)


def envelope(request: ModelRequest) -> dict[str, Any]:
    emulation = emulate_tools(request)
    assert emulation.mode == "envelope"
    assert emulation.request.output_schema is not None
    return emulation.request.output_schema.schema


def valid(schema: dict[str, Any], value: Any) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(value)


# --- the schema --------------------------------------------------------------------


def test_auto_allows_an_answer_or_calls_with_arguments_checked_per_tool() -> None:
    schema = envelope(ask(tools=(WEATHER, ADD)))
    assert valid(schema, {"answer": "It is sunny."})
    assert valid(schema, {"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}]})
    assert valid(
        schema,
        {
            "tool_calls": [
                {"name": "get_weather", "arguments": {"city": "Paris"}},
                {"name": "add", "arguments": {"a": 1, "b": 2}},
            ]
        },
    )
    # arguments of one tool under the other's name, unknown tools, both keys, nothing
    assert not valid(schema, {"tool_calls": [{"name": "add", "arguments": {"city": "Paris"}}]})
    assert not valid(schema, {"tool_calls": [{"name": "delete_all", "arguments": {}}]})
    assert not valid(schema, {"answer": "x", "tool_calls": []})
    assert not valid(schema, {"tool_calls": []})


def test_required_allows_calls_only() -> None:
    schema = envelope(ask(tools=(WEATHER, ADD), tool_choice="required"))
    assert not valid(schema, {"answer": "no"})
    assert valid(schema, {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]})


def test_a_named_tool_is_the_only_one_allowed() -> None:
    schema = envelope(ask(tools=(WEATHER, ADD), tool_choice="add"))
    assert valid(schema, {"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}]})
    assert not valid(schema, {"tool_calls": [{"name": "get_weather", "arguments": {"city": "x"}}]})
    assert not valid(schema, {"answer": "no"})


def test_an_unknown_named_tool_is_a_bad_request() -> None:
    with pytest.raises(BadRequestError, match="nope"):
        emulate_tools(ask(tools=(WEATHER,), tool_choice="nope"))


def test_no_parallel_calls_means_at_most_one() -> None:
    two = {
        "tool_calls": [
            {"name": "add", "arguments": {"a": 1, "b": 2}},
            {"name": "add", "arguments": {"a": 3, "b": 4}},
        ]
    }
    assert valid(envelope(ask(tools=(ADD,))), two)
    assert not valid(envelope(ask(tools=(ADD,), parallel_tool_calls=False)), two)
    profile_limited = emulate_tools(ask(tools=(ADD,)), parallel_tools=False).request.output_schema
    assert profile_limited is not None and not valid(profile_limited.schema, two)


def test_tool_choice_none_asks_for_plain_text() -> None:
    emulation = emulate_tools(ask(tools=(WEATHER,), tool_choice="none"))
    assert emulation.mode == "text"
    assert emulation.request.tools == () and emulation.request.output_schema is None
    assert "get_weather" not in emulation.request.system_text


def test_structured_output_alone_goes_to_the_decoder_unchanged() -> None:
    schema = OutputSchema({"type": "object", "properties": {"n": {"type": "integer"}}})
    request = ask(output_schema=schema)
    emulation = emulate_tools(request)
    assert emulation.mode == "text" and emulation.request is request


def test_tools_are_described_in_the_system_prompt_and_the_turn_ends_with_a_reminder() -> None:
    request = emulate_tools(ask(tools=(WEATHER,))).request
    system = request.messages[0]
    assert system.role == "system" and system.text.startswith("Be helpful.")
    assert '"name": "get_weather"' in system.text and "Current weather" in system.text
    assert request.messages[-1].text.endswith(ANSWER_OR_CALL_REMINDER)
    assert request.tools == ()


@pytest.mark.parametrize(
    ("answer_first", "reminder"), [(True, ANSWER_OR_CALL_REMINDER), (False, CALL_REMINDER)]
)
def test_the_profile_decides_whether_the_answer_or_the_calls_are_offered_first(
    answer_first: bool, reminder: str
) -> None:
    request = emulate_tools(ask(tools=(WEATHER,)), answer_first=answer_first).request
    system = request.system_text
    answer_before_calls = system.index('{"answer"') < system.index('{"tool_calls"')
    assert answer_before_calls is answer_first
    assert request.messages[-1].text.endswith(reminder)


def test_only_calls_are_described_when_a_call_is_required() -> None:
    system = emulate_tools(ask(tools=(WEATHER,), tool_choice="required")).request.system_text
    assert '{"tool_calls"' in system and '{"answer"' not in system


# --- rendering the history ------------------------------------------------------------


def test_history_has_no_tool_role_and_results_are_marked() -> None:
    call = ToolCallPart("call_7", "get_weather", {"city": "Paris"})
    messages = (
        Message.system("Be helpful."),
        Message.user("Weather in Paris?"),
        Message.assistant("Let me look.", (call,)),
        Message.tool(ToolResultPart("call_7", "get_weather", '{"temp_c": 18}')),
        Message.user("And should I take an umbrella?"),
    )
    rendered = render_history(messages)
    assert [m.role for m in rendered] == ["system", "user", "assistant", "user"]
    assistant = rendered[2].text
    assert assistant.startswith("Let me look.\n")
    assert json.loads(assistant.split("\n", 1)[1]) == {
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    }
    merged = rendered[3].text
    assert (
        '<tool_result name="get_weather" call_id="call_7">\n{"temp_c": 18}\n</tool_result>'
        in merged
    )
    assert merged.endswith("And should I take an umbrella?")
    assert not any(m.tool_calls or m.tool_results for m in rendered)


def test_an_error_result_is_marked_as_such() -> None:
    messages = (
        Message.user("Weather?"),
        Message.assistant("", (ToolCallPart("c1", "get_weather", {}),)),
        Message.tool(ToolResultPart("c1", "get_weather", "city is required", is_error=True)),
    )
    request = emulate_tools(ModelRequest(messages, tools=(WEATHER,))).request
    last = request.messages[-1]
    assert last.role == "user" and 'error="true"' in last.text
    # After calls that all failed, the model is steered back to the question.
    assert last.text.endswith(ERROR_REMINDER)


def test_results_with_one_success_keep_the_result_reminder() -> None:
    messages = (
        Message.user("Weather in Rome and Oslo?"),
        Message.assistant(
            "",
            (
                ToolCallPart("c1", "get_weather", {"city": "Rome"}),
                ToolCallPart("c2", "get_weather", {}),
            ),
        ),
        Message.tool(
            ToolResultPart("c1", "get_weather", "sunny"),
            ToolResultPart("c2", "get_weather", "city is required", is_error=True),
        ),
    )
    last = emulate_tools(ModelRequest(messages, tools=(WEATHER,))).request.messages[-1]
    assert last.text.endswith(RESULT_REMINDER)


def test_history_with_tool_parts_is_rendered_even_without_tools() -> None:
    messages = (
        Message.user("Weather?"),
        Message.assistant("", (ToolCallPart("c1", "get_weather", {"city": "Rome"}),)),
        Message.tool(ToolResultPart("c1", "get_weather", "sunny")),
    )
    emulation = emulate_tools(ModelRequest(messages))
    assert emulation.mode == "text"
    assert [m.role for m in emulation.request.messages] == ["user", "assistant", "user"]


# --- decoding what the model streams --------------------------------------------------


def model_saying(text: str, chunk_size: int = 4) -> EmulatedToolsModel:
    return EmulatedToolsModel(FunctionModel(lambda request: text, chunk_size=chunk_size))


async def test_a_plain_answer_streams_incrementally() -> None:
    answer = 'Paris is "sunny", 18 °C.\nTake sunglasses 😎 \\o/'
    raw = json.dumps({"answer": answer})  # escapes: \" \n \u00b0 surrogate pair \\
    model = model_saying(raw, chunk_size=3)
    events = [e async for e in model.stream(ask(tools=(WEATHER,)))]
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 5  # streamed piece by piece, not at the end
    assert "".join(deltas) == answer
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.response.text == answer and end.response.finish_reason == "stop"
    assert not end.response.tool_calls


@pytest.mark.parametrize("size", [1, 2, 5, 7])
def test_the_decoder_gives_the_same_text_however_the_stream_is_cut(size: int) -> None:
    answer = 'a"b\\c\nd\té€𝄞 end'
    raw = '{ "answer" :  ' + json.dumps(answer) + " }"
    decoder = EnvelopeDecoder()
    pieces: list[str] = []
    for start in range(0, len(raw), size):
        for event in decoder.feed(raw[start : start + size]):
            assert isinstance(event, TextDelta)
            pieces.append(event.text)
    tail, reason = decoder.finish("stop")
    assert "".join(pieces) == answer and tail == [] and reason == "stop"


async def test_tool_calls_come_back_as_tool_call_parts_with_stable_ids() -> None:
    raw = json.dumps(
        {
            "tool_calls": [
                {"name": "get_weather", "arguments": {"city": "Paris"}},
                {"name": "get_weather", "arguments": {"city": "Rome"}},
            ]
        }
    )
    model = model_saying(raw)
    request = ask(tools=(WEATHER,))
    events = [e async for e in model.stream(request)]
    assert not any(isinstance(e, TextDelta) for e in events)
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [d.index for d in deltas] == [0, 1]
    response = events[-1].response  # type: ignore[union-attr]
    assert response.finish_reason == "tool_calls"
    calls = response.tool_calls
    assert [(c.name, c.arguments) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Rome"}),
    ]
    assert calls[0].id != calls[1].id and calls[0].id.startswith("call_")
    again = await model_saying(raw).complete(request)
    assert [c.id for c in again.tool_calls] == [c.id for c in calls]  # stable
    other = await model_saying(raw).complete(ask("And in Oslo?", tools=(WEATHER,)))
    assert other.tool_calls[0].id != calls[0].id  # another conversation, another id


async def test_the_model_sees_the_rewritten_request() -> None:
    seen: list[ModelRequest] = []

    def answer(request: ModelRequest) -> str:
        seen.append(request)
        return json.dumps({"answer": "ok"})

    model = EmulatedToolsModel(FunctionModel(answer))
    response = await model.complete(ask(tools=(WEATHER,)))
    assert response.text == "ok"
    request = seen[0]
    assert request.tools == ()
    assert request.output_schema is not None and request.output_schema.name == "tool_envelope"
    assert "get_weather" in request.system_text


async def test_a_tool_result_round_trip() -> None:
    model = EmulatedToolsModel(
        ScriptedModel(
            [
                json.dumps({"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}),
                json.dumps({"answer": "2 + 3 = 5"}),
            ]
        )
    )
    first = await model.complete(ask("What is 2 + 3?", tools=(ADD,)))
    call = first.tool_calls[0]
    follow_up = ModelRequest(
        (
            *ask("What is 2 + 3?").messages,
            first.message,
            Message.tool(ToolResultPart(call.id, "add", "5")),
        ),
        tools=(ADD,),
    )
    second = await model.complete(follow_up)
    assert second.text == "2 + 3 = 5" and second.finish_reason == "stop"
    sent = model.inner.requests[1]  # type: ignore[attr-defined]
    assert [m.role for m in sent.messages] == ["system", "user", "assistant", "user"]
    assert f'call_id="{call.id}"' in sent.messages[-1].text


async def test_a_structured_answer_alongside_tools() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    request = ask("Count.", tools=(ADD,), output_schema=OutputSchema(schema))
    outer = envelope(request)
    assert valid(outer, {"answer": {"n": 3}}) and not valid(outer, {"answer": "three"})
    response = await model_saying(json.dumps({"answer": {"n": 3}})).complete(request)
    assert response.json() == {"n": 3}


async def test_text_that_ignores_the_envelope_passes_through() -> None:
    response = await model_saying("Just text, no JSON.").complete(ask(tools=(WEATHER,)))
    assert response.text == "Just text, no JSON." and not response.tool_calls


async def test_a_tool_call_cut_off_is_an_error_not_a_silent_answer() -> None:
    decoder = EnvelopeDecoder()
    decoder.feed('{"tool_calls": [{"name": "add", "argu')
    with pytest.raises(MalformedResponseError, match="max_output_tokens"):
        decoder.finish("length")


async def test_an_answer_cut_off_keeps_its_text_and_says_length() -> None:
    decoder = EnvelopeDecoder()
    shown = decoder.feed('{"answer": "The weather in Par')
    assert "".join(e.text for e in shown if isinstance(e, TextDelta)) == "The weather in Par"
    assert decoder.finish("length") == ([], "length")


async def test_without_tools_the_wrapper_changes_nothing() -> None:
    model = EmulatedToolsModel(FunctionModel(lambda request: "plain answer"))
    response = await collect(model.stream(ask()))
    assert response.text == "plain answer"


async def test_a_structured_string_answer_stays_json() -> None:
    request = ask("Name a city.", tools=(ADD,), output_schema=OutputSchema({"type": "string"}))
    response = await model_saying(json.dumps({"answer": "Oslo"})).complete(request)
    assert response.json() == "Oslo"
