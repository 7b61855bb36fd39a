"""The context window is used: a request that cannot fit is refused before it is sent,
and a conversation's oldest turns are left out so that the rest fits."""

from __future__ import annotations

import pytest

from pilothouse.errors import ContextTooLongError
from pilothouse.models.context import check_fits, estimate_tokens, fit_history, least_tokens
from pilothouse.models.profiles import ModelProfile
from pilothouse.models.testing import ScriptedModel
from pilothouse.types import Message, ModelRequest, ToolCallPart, ToolResultPart

SMALL = ModelProfile(family="qwen", context_window=1000)


def words(n: int, word: str = "lorem") -> str:
    return " ".join([word] * n)


def test_the_estimates_bracket_real_text() -> None:
    request = ModelRequest((Message.user(words(600)),))  # 3,599 bytes, ~600 real tokens
    assert least_tokens(request) < 600 < estimate_tokens(request) < 1000


def test_a_request_that_cannot_fit_is_refused_before_it_is_sent() -> None:
    model = ScriptedModel(["never"], profile=SMALL)
    request = ModelRequest((Message.system("Be brief."), Message.user(words(2000))))
    with pytest.raises(ContextTooLongError, match="context window of 1000 tokens") as info:
        check_fits(request, SMALL, "vllm:x")
    assert info.value.failover  # a fallback chain moves on to a larger model
    with pytest.raises(ContextTooLongError):
        import asyncio

        asyncio.run(model.complete(request))
    assert model.requests == []  # nothing was sent
    check_fits(request, ModelProfile(), "vllm:x")  # an unknown window is never refused


def test_the_output_asked_for_counts() -> None:
    request = ModelRequest((Message.user(words(300)),), max_output_tokens=900)
    with pytest.raises(ContextTooLongError, match="plus the 900 output tokens"):
        check_fits(request, SMALL, "vllm:x")
    check_fits(ModelRequest((Message.user(words(300)),), max_output_tokens=100), SMALL, "x")


def test_the_oldest_turns_are_left_out_to_fit() -> None:
    call = ToolCallPart("c1", "lookup", {"term": "x"})
    messages = (
        Message.system("You are the helpdesk."),
        Message.user("first question " + words(150, "alpha")),
        Message.assistant("first answer " + words(150, "alpha")),
        Message.user("second question"),
        Message.assistant("", (call,)),
        Message.tool(ToolResultPart("c1", "lookup", words(150, "beta"))),
        Message.assistant("second answer"),
        Message.user("third question " + words(100, "gamma")),
    )
    request = ModelRequest(messages, max_output_tokens=200)
    fitted = fit_history(request, SMALL)
    kept = [m.text[:15] for m in fitted.messages]
    assert kept[0] == "You are the hel" and kept[-1] == "third question "
    assert "first question " not in kept and "first answer al" not in kept
    assert estimate_tokens(fitted) + 200 <= 1000
    # a tool call never loses its result (nor the other way round)
    roles = [m.role for m in fitted.messages]
    assert ("tool" in roles) == any(m.tool_calls for m in fitted.messages)
    # nothing is left out where everything fits, or where the window is unknown
    assert fit_history(request, ModelProfile(context_window=100_000)) is request
    assert fit_history(request, ModelProfile()) is request


def test_the_question_and_the_current_turn_are_never_left_out() -> None:
    messages = (
        Message.system("S"),
        Message.user(words(100)),
        Message.user("the question " + words(1000)),
        Message.assistant("", (ToolCallPart("c1", "lookup", {}),)),
        Message.tool(ToolResultPart("c1", "lookup", "found")),
    )
    fitted = fit_history(ModelRequest(messages), SMALL)
    assert [m.role for m in fitted.messages] == ["system", "user", "assistant", "tool"]
    assert fitted.messages[1].text.startswith("the question")
