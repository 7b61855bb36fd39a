"""A follow-up's prompt begins with the previous turn's last request and the model's
reply, byte for byte (so a local model reuses its cached prompt): the conversation
keeps each turn as it was sent (its passages, its step, the reply as the model wrote
it), while people see the bare question and the shown answer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.models import FunctionModel
from pilothouse.types import Message, ModelRequest, message_to_dict
from tests.copilot.test_stepped_turns import shop, small_model

__all__ = ["shop"]


def wire(messages: Sequence[Message]) -> str:
    return json.dumps([message_to_dict(m) for m in messages], ensure_ascii=False)


async def two_turns(
    folder: Path, settings: Settings, model: FunctionModel, first: str, second: str
) -> tuple[list[ModelRequest], list[ModelRequest], list[Message]]:
    """Both turns' requests, and the conversation as people see it."""
    copilot = await Copilot.open(folder, settings=settings, models=[model])
    try:
        answer = await copilot.ask(first)
        count = len(model.requests)
        await copilot.ask(second, conversation_id=answer.conversation_id)
        shown = await copilot.conversations.messages(answer.conversation_id)
    finally:
        await copilot.aclose()
    return model.requests[:count], model.requests[count:], shown


def assert_continues(turn1: list[ModelRequest], turn2: list[ModelRequest], reply: str) -> None:
    before = [*turn1[-1].messages, Message.assistant(reply)]
    for request in turn2:
        assert wire(request.messages[: len(before)]) == wire(before)
        assert len(request.messages) > len(before)


async def test_a_stepped_follow_up_begins_with_the_answered_request(
    shop: Path,
    settings: Settings,
) -> None:
    reply = '{"sources": [1], "answer": "Express costs 6 pounds."}'
    model = small_model("answer", answer=reply)
    turn1, turn2, shown = await two_turns(
        shop, settings, model, "How much is express delivery?", "And how fast is it?"
    )
    assert_continues(turn1, turn2, reply)
    assert "Passages from the knowledge base" in turn2[0].messages[1].text
    assert [m.text for m in shown] == [
        "How much is express delivery?",
        "Express costs 6 pounds. [1]",
        "And how fast is it?",
        "Express costs 6 pounds. [1]",
    ]


async def test_a_follow_up_after_a_tool_call_begins_with_the_call_and_its_result(
    shop: Path,
    settings: Settings,
) -> None:
    reply = '{"answer": "SO-1002 has shipped."}'
    model = small_model("call:order_status", arguments='{"order_id": "SO-1002"}', answer=reply)
    turn1, turn2, shown = await two_turns(
        shop, settings, model, "Where is my order SO-1002?", "When will SO-1002 arrive?"
    )
    assert len(turn1) == 3  # decide, arguments, the answer from the result
    assert_continues(turn1, turn2, reply)
    assert [m.role for m in shown] == ["user", "assistant", "tool", "assistant"] * 2
    assert shown[0].text == "Where is my order SO-1002?"


async def test_a_native_follow_up_begins_with_the_answered_request(
    shop: Path,
    settings: Settings,
) -> None:
    reply = "Express costs 6 pounds [1]. It arrives the next working day."
    model = FunctionModel(lambda request: reply)
    turn1, turn2, shown = await two_turns(
        shop, settings, model, "How much is express delivery?", "And how fast is it?"
    )
    assert len(turn1) == len(turn2) == 1
    assert_continues(turn1, turn2, reply)
    assert [m.text for m in shown][::2] == ["How much is express delivery?", "And how fast is it?"]
