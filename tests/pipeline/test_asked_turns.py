"""Multi-turn eval cases whose earlier turns run for real (`earlier_turns: asked`):
each user turn is asked of the copilot, stored as it was sent, its own answer is what
the follow-up continues, per-turn expectations are checked, the last turn is scored
as any case."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot.conversations import ConversationStore
from pilothouse.errors import UnavailableError
from pilothouse.models.testing import Turn
from pilothouse.pipeline.runner import EvalPlan, EvalRunner
from pilothouse.pipeline.suite import SuiteError, parse_suite
from pilothouse.storage.evals import EvalStore
from pilothouse.storage.traces import TraceStore
from pilothouse.types import ModelRequest
from tests.pipeline.conftest import factory, question_of

SUITE = """\
suite: turns
defaults:
  earlier_turns: asked
cases:
  - id: printer-then-model
    conversation:
      - user: Where are the printers?
        expect:
          answer_includes: [floor 3]
    question: And which model are they?
    expect:
      answer_includes: [Xerox]
      no_tool_calls: true
  - id: given-follow-up
    earlier_turns: given
    conversation:
      - user: Which VPN client do we use?
      - assistant: The suite's own words [1].
    question: And which port does it use?
    expect:
      answer_includes: ["51820"]
"""

SEEN: list[list[tuple[str, str]]] = []


def answers(wrong_first: bool = False):  # type: ignore[no-untyped-def]
    def answer(request: ModelRequest) -> Turn:
        SEEN.append([(m.role, m.text) for m in request.messages])
        q = question_of(request)
        if "printers" in q:
            return "In the basement [1]." if wrong_first else "On floor 3, by the kitchen [1]."
        if "which model" in q:
            return "A Xerox C8155 [1]."
        if "port" in q:
            return "Port 51820 [1]."
        return "I do not know."

    return answer


async def run(folder: Path, settings: Settings, store: EvalStore, body: object) -> str:
    (folder / "evals/basic.yaml").write_text(SUITE)
    runner = EvalRunner(settings, store, model_factory=factory(**{"test:m": body}))
    return await runner.start(EvalPlan(folder=str(folder), models=("test:m",), concurrency=1))


def scores(store: EvalStore, run_id: str) -> dict[tuple[str, str], tuple[float | None, str]]:
    return {
        (case_id, metric): (value, detail)
        for _s, case_id, _r, metric, _j, value, detail in store.scores(run_id, 1)
    }


async def test_earlier_turns_are_asked_and_stored_as_sent_and_the_follow_up_continues_them(
    copilot_dir: Path, settings: Settings, store: EvalStore
) -> None:
    SEEN.clear()
    run_id = await run(copilot_dir, settings, store, answers())
    assert store.counts(run_id, 1) == {"passed": 2, "failed": 0, "error": 0}
    found = scores(store, run_id)
    assert found[("printer-then-model", "earlier_turns")] == (1.0, "")
    assert ("given-follow-up", "earlier_turns") not in found  # given turns: nothing to check
    [row] = [r for r in store.cases(run_id) if r.case_id == "printer-then-model"]
    [turn] = row.details["turns"]
    assert turn["answer"] == "On floor 3, by the kitchen [1]."
    assert turn["trace_id"] and turn["trace_id"] != row.trace_id
    assert row.answer == "A Xerox C8155 [1]."
    # The follow-up's request holds the first turn as it was sent (its passages, the
    # model's own answer), not a history written in the suite.
    follow_up = next(m for m in SEEN if "which model" in m[-1][1])
    earlier = [text for role, text in follow_up[1:-1] if role == "user"]
    assert earlier and "Passages from the knowledge base" in earlier[0]
    assert ("assistant", "On floor 3, by the kitchen [1].") in follow_up
    given = next(m for m in SEEN if "port" in m[-1][1])
    assert ("assistant", "The suite's own words [1].") in given
    with ConversationStore.for_settings(settings) as conversations:
        records = await conversations.records(turn_conversation(settings, store, run_id))
    assert [r.message.role for r in records] == ["user", "assistant", "user", "assistant"]
    assert records[0].message.text == "Where are the printers?"  # what people saw
    assert records[0].sent is not None and "Passages" in records[0].sent[0].text


def turn_conversation(settings: Settings, store: EvalStore, run_id: str) -> str:
    [row] = [r for r in store.cases(run_id) if r.case_id == "printer-then-model"]
    traces = TraceStore.for_settings(settings)
    try:
        return str(traces.get_run(row.trace_id or "").run.conversation_id)
    finally:
        traces.close()


async def test_an_earlier_turn_that_misses_its_expectation_fails_the_case_with_the_turn_named(
    copilot_dir: Path, settings: Settings, store: EvalStore
) -> None:
    run_id = await run(copilot_dir, settings, store, answers(wrong_first=True))
    found = scores(store, run_id)
    assert found[("printer-then-model", "earlier_turns")] == (
        0.0,
        "turn 1 answer_includes: missing: floor 3",
    )
    assert found[("printer-then-model", "answer_includes")] == (1.0, "")  # the last turn's own
    assert found[("printer-then-model", "pass")] == (0.0, "")


async def test_an_earlier_turn_that_fails_makes_the_case_an_error(
    copilot_dir: Path, settings: Settings, store: EvalStore
) -> None:
    def down(request: ModelRequest) -> Turn:
        raise UnavailableError("the model is down", model="test:m")

    run_id = await run(copilot_dir, settings, store, down)
    [row] = [r for r in store.cases(run_id) if r.case_id == "printer-then-model"]
    assert row.status == "error"
    assert row.error is not None and row.error.startswith(
        "earlier turn 1 ('Where are the printers?'):"
    )


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            SUITE.replace(
                "      - user: Where are the printers?\n",
                "      - user: Where are the printers?\n      - assistant: Floor 3.\n"
                "      - user: Thanks. Where exactly?\n",
            ),
            ":8: cases.0.conversation.1.assistant (case printer-then-model): the earlier "
            "turns are asked",
        ),
        (
            SUITE.replace("defaults:\n  earlier_turns: asked\n", ""),
            ":6: cases.0.conversation.0.expect (case printer-then-model): an earlier turn "
            "expects something only when the turns are asked",
        ),
        (
            SUITE.replace("      - user: Where are the printers?\n", "      - assistant: Hi.\n"),
            ":7: cases.0.conversation.0 (case printer-then-model): only a user turn expects",
        ),
        (
            SUITE.replace("earlier_turns: asked", "earlier_turns: replayed"),
            ":3: defaults.earlier_turns: Input should be 'given' or 'asked'",
        ),
    ],
)
def test_turns_that_do_not_fit_their_mode_are_named_with_file_and_line(
    text: str, where: str
) -> None:
    with pytest.raises(SuiteError) as raised:
        parse_suite(text, Path("turns.yaml"))
    assert f"turns.yaml{where}" in str(raised.value)
