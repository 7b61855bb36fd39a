"""The scaffolded copilot on the real embedded model (0.5B in CI): a grounded answer
with a correct citation, and a tool call when asked to do something."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.copilot.templates import copy_template
from tests.real_model import real_weights

pytestmark = pytest.mark.real_model
HELPDESK = Path(__file__).resolve().parents[2] / "examples" / "helpdesk"


async def on_the_real_model(folder: Path, home: Path):  # type: ignore[no-untyped-def]
    settings = Settings.from_sources(home=home, environ={})
    opened = await Copilot.open(folder, settings=settings, model=f"local:{real_weights()}")
    yield opened
    await opened.aclose()


@pytest.fixture
async def copilot(tmp_path: Path):  # type: ignore[no-untyped-def]
    folder = tmp_path / "demo"
    copy_template(folder, name="demo")
    async for opened in on_the_real_model(folder, tmp_path / "home"):
        yield opened


async def test_answers_from_the_sample_knowledge_with_a_citation(copilot: Copilot) -> None:
    answer = await copilot.ask("How long do the backup batteries last?")
    assert answer.status == "completed", answer.error
    assert "year" in answer.text.lower()
    assert answer.citations, f"no [n] citation in: {answer.text!r}"
    assert answer.citations[0].source.endswith("product-faq.md")
    assert "Batteries" in answer.citations[0].headings


async def test_calls_the_sample_tool_when_asked_to_do_something(copilot: Copilot) -> None:
    answer = await copilot.ask("What is the status of my order SO-1002?")
    assert answer.status == "completed", answer.error
    calls = [(o.call.name, o.call.arguments) for o in answer.tool_calls]
    assert ("order_status", {"order_id": "SO-1002"}) in calls
    assert "shipped" in answer.text.lower()


# --- the starter's traps (issue 20): nothing invented, nothing needless ----------------


async def test_a_knowledge_question_that_mentions_an_order_calls_nothing(
    copilot: Copilot,
) -> None:
    answer = await copilot.ask(
        "I ordered a T2 last week. How long does standard delivery usually take?"
    )
    assert answer.status == "completed", answer.error
    assert answer.tool_calls == (), [(o.call.name, o.call.arguments) for o in answer.tool_calls]
    assert "SO-1001" not in answer.text


async def test_a_return_without_an_order_number_is_a_question_not_a_call(
    copilot: Copilot,
) -> None:
    answer = await copilot.ask("I want to return my thermostat.")
    assert answer.status == "completed", answer.error
    # No call ran or waits for approval with an order id nobody gave.
    assert answer.tool_calls == (), [(o.call.name, o.call.arguments) for o in answer.tool_calls]
    assert "SO-1001" not in answer.text


async def test_an_order_check_without_its_number_asks_then_looks_it_up(
    copilot: Copilot,
) -> None:
    # Issue 20's fourth round: the question back, then the next turn's order number
    # resumes the lookup (the 0.5B made such a follow-up a call of another tool before).
    first = await copilot.ask("Could you find out what happened to my order?")
    assert first.status == "completed", first.error
    assert first.tool_calls == () and "?" in first.text, first.text
    then = await copilot.ask("It is SO-1002.", conversation_id=first.conversation_id)
    assert then.status == "completed", then.error
    calls = [(o.call.name, o.call.arguments) for o in then.tool_calls]
    assert calls == [("order_status", {"order_id": "SO-1002"})], calls


async def test_a_return_in_other_words_is_offered_for_approval_with_its_order(
    copilot: Copilot,
) -> None:
    # Issue 20's fifth round: "send ... back" names no tool; the order id given makes
    # it a lookup or an action, and the return is the one nearest in meaning. The 0.5B
    # made such requests an `order_status` before.
    answer = await copilot.ask("Please send SO-1003 back to you, I no longer need it.")
    assert answer.status == "awaiting_approval", (answer.status, answer.text)
    [pending] = answer.pending
    assert pending.call.name == "request_return"
    assert pending.call.arguments["order_id"] == "SO-1003"


# --- the helpdesk's tools without ids (issue 20): offered only when asked for ---------


@pytest.fixture
async def helpdesk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PILOTHOUSE_HOME", str(tmp_path / "home"))  # the tickets' database
    async for opened in on_the_real_model(HELPDESK, tmp_path / "home"):
        yield opened


async def test_a_handbook_question_opens_no_ticket(helpdesk: Copilot) -> None:
    # Before issue 20's third round the 0.5B chose create_ticket or list_my_tickets
    # (no identifying parameter, so the grounded check never applied) on 6 of 7 of these.
    answer = await helpdesk.ask("How long is a Temporary Access Pass valid?")
    assert answer.status == "completed", answer.error
    assert answer.tool_calls == (), [(o.call.name, o.call.arguments) for o in answer.tool_calls]
    assert any(c.source.endswith("password-and-mfa.md") for c in answer.citations), answer.text
