"""A copilot whose model runs in this process reads its stable prefix ahead of the
first question: the same messages, tools and tool choice that the first question's
request begins with, byte for byte, and an empty user turn; remote models are not read
ahead, and a failed read fails nothing."""

from __future__ import annotations

from pathlib import Path

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.errors import UnavailableError
from pilothouse.models import FunctionModel
from pilothouse.types import Message, ModelRequest
from tests.copilot.test_follow_up_prompts import wire
from tests.copilot.test_stepped_turns import shop, small_model

__all__ = ["shop"]


class Here(FunctionModel):
    """A test double that computes in this process, as the embedded model does."""

    def runs_here(self) -> bool:
        return True


def here(model: FunctionModel) -> Here:
    """`model`, computing here; the read-ahead (an empty user turn) gets a space."""

    def reply(request: ModelRequest) -> object:
        return " " if request.messages[-1] == Message.user("") else model.function(request)

    return Here(reply, model.id, profile=model.profile)  # type: ignore[arg-type]


async def read_then_ask(folder: Path, settings: Settings, model: FunctionModel) -> object:
    copilot = await Copilot.open(folder, settings=settings, models=[model])
    try:
        usage = await copilot.read_ahead()
        await copilot.ask("How much is express delivery?")
    finally:
        await copilot.aclose()
    return usage


def assert_prefix_of(ahead: ModelRequest, first: ModelRequest) -> None:
    systems = len(ahead.messages) - 1
    assert systems >= 1 and all(m.role == "system" for m in ahead.messages[:systems])
    assert wire(ahead.messages[:systems]) == wire(first.messages[:systems])
    assert first.messages[systems].role == "user" and ahead.messages[-1] == Message.user("")
    assert (ahead.tools, ahead.tool_choice) == (first.tools, first.tool_choice)
    assert ahead.max_output_tokens == 1


async def test_a_stepped_copilot_reads_its_prefix_ahead(shop: Path, settings: Settings) -> None:
    model = here(small_model("answer", answer='{"sources": [1], "answer": "6 pounds."}'))
    usage = await read_then_ask(shop, settings, model)
    ahead, first = model.requests[:2]
    assert_prefix_of(ahead, first)
    assert "# Functions" in ahead.messages[0].text  # the tools, in the stepped system prompt
    assert usage is not None and len(model.requests) >= 2  # then the question's steps


async def test_a_native_copilot_reads_its_prefix_and_tools_ahead(
    shop: Path, settings: Settings
) -> None:
    model = Here(lambda request: "Express costs 6 pounds [1].")
    await read_then_ask(shop, settings, model)
    ahead, first = model.requests
    assert_prefix_of(ahead, first)
    assert ahead.tool_choice == "auto" and ahead.tools


async def test_a_remote_model_is_not_read_ahead(shop: Path, settings: Settings) -> None:
    model = FunctionModel(lambda request: "Express costs 6 pounds [1].")
    assert await read_then_ask(shop, settings, model) is None
    assert len(model.requests) == 1  # the question's


async def test_a_failed_read_ahead_fails_nothing(shop: Path, settings: Settings) -> None:
    replies: list[str | Exception] = [UnavailableError("loading"), "Express costs 6 pounds [1]."]

    def reply(request: ModelRequest) -> str:
        answer = replies.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    model = Here(reply)
    copilot = await Copilot.open(shop, settings=settings, models=[model])
    try:
        assert await copilot.read_ahead() is None
        answer = await copilot.ask("How much is express delivery?")
    finally:
        await copilot.aclose()
    assert answer.status == "completed" and answer.text == "Express costs 6 pounds [1]."
