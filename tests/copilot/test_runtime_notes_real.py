"""On the real embedded model (0.5B): after a person denies an approval-gated call, the
answer the user reads says so in plain words, never the runtime's note to the model.
(The real helpdesk promotion run had the 0.5B and the 1.5B answer a denial with the
runtime's note word for word.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.copilot import runtime_notes as notes
from pilothouse.copilot.answer_filter import NO_ANSWER_LEFT
from pilothouse.copilot.templates import copy_template
from pilothouse.models import ScriptedModel, tool_call
from tests.real_model import real_weights

pytestmark = pytest.mark.real_model


def words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


async def test_a_denied_return_is_answered_in_plain_words(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    copy_template(folder, name="demo")
    settings = Settings.from_sources(home=tmp_path / "home", environ={})
    question = "Please return my order SO-1002, the thermostat is faulty."
    # The call is scripted (what the model would choose is not what this tests)...
    scripted = ScriptedModel(
        [tool_call("request_return", {"order_id": "SO-1002", "reason": "faulty"}, id="r1")]
    )
    asked = await Copilot.open(folder, settings=settings, models=[scripted])
    try:
        paused = await asked.ask(question)
    finally:
        await asked.aclose()
    assert paused.status == "awaiting_approval", paused.error
    # ...the answer after the denial is the real model's.
    real = await Copilot.open(folder, settings=settings, model=f"local:{real_weights()}")
    try:
        answer = await real.approve(paused.run_id, deny=["r1"], note="not needed")
    finally:
        await real.aclose()
    assert answer.status == "completed", answer.error
    action = "start a return for an order and email the customer a return label"
    note = notes.DENIED.write(action=action, why=" (not needed)")
    shown = words(answer.text)
    for sentence in re.split(r"(?<=[.!?])\s+", note):
        assert words(sentence) not in shown, answer.text
    assert "not done" not in shown and "do not ask" not in shown, answer.text
    assert answer.text.strip() and answer.text != NO_ANSWER_LEFT, answer.text
