"""A stepped answer's fixed JSON is written for a model that continues a final
assistant message and takes a grammar (the embedded runtime), not decoded: the
passage numbers are asked for after `{"sources": [`, then the answer after
`{"sources": [n], "answer": "`; the user sees the answer as before, and the
conversation keeps the whole JSON reply, so a follow-up's prompt still begins with
the last request and its reply as the model's cache holds them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pilothouse.config import Settings
from pilothouse.copilot import answer_opening
from pilothouse.copilot.run_state import RunState
from pilothouse.models import FunctionModel
from pilothouse.types import Message, ModelRequest, TextDelta
from tests.copilot.test_follow_up_prompts import two_turns, wire
from tests.copilot.test_grounded_args import tool_results
from tests.copilot.test_scripts_used import in_latin
from tests.copilot.test_stepped_turns import SMALL, ask, shop, step_of

__all__ = ["shop"]

GRAMMAR = replace(SMALL, grammar=True)


def continuing_model(sources: str, answer: str) -> FunctionModel:
    """A model with assistant prefill: it writes what follows the given start (the
    numbers before the `]` its stop string leaves out, or the answer's rest)."""

    def reply(request: ModelRequest) -> str:
        last = request.messages[-1]
        assert last.role == "assistant", "every answer request starts the reply"
        assert request.output_schema is None and request.grammar is not None
        if last.text == answer_opening.SOURCES_START:
            assert request.stop == (answer_opening.SOURCES_STOP,)
            return sources
        assert last.text.endswith('"answer": "') and request.grammar == in_latin(
            answer_opening.ANSWER_GRAMMAR
        )
        return answer

    return FunctionModel(reply, model_id="local:small", profile=GRAMMAR, continues=True)


async def test_the_answer_continues_the_json_written_for_the_model(
    shop: Path, settings: Settings
) -> None:
    model = continuing_model("1", 'Express costs 6 pounds."}')
    turns = await two_turns(
        shop, settings, model, "How much is express delivery?", "And how fast is it?"
    )
    sources, answer = turns.turn1
    assert step_of(replace(sources, messages=sources.messages[:-1])).startswith("Step: answer")
    assert sources.messages[:-1] == answer.messages[:-1]  # the same prompt, then the start
    assert answer.messages[-1].text == '{"sources": [1], "answer": "'
    # shown as before; the conversation keeps the whole reply
    assert turns.answers[0].text == "Express costs 6 pounds. [1]"
    whole = '{"sources": [1], "answer": "Express costs 6 pounds."}'
    before = [*answer.messages[:-1], Message.assistant(whole)]
    for request in turns.turn2:  # the follow-up begins with the answered request
        assert wire(request.messages[: len(before)]) == wire(before)
    assert [m.text for m in turns.shown][:2] == [
        "How much is express delivery?",
        "Express costs 6 pounds. [1]",
    ]


def test_the_sources_grammar_allows_one_to_three_of_the_passages() -> None:
    # After the "]", what the JSON allows there: the model's likeliest token is "],"
    # (one token), which a grammar ending at "]" would forbid (it then named more).
    after = 'after ::= [ \\t\\n]* ("," [ \\t\\n"]*)?\n'
    assert answer_opening.sources_grammar([2]) == (
        f'root ::= number "]" after\nnumber ::= "2"\n{after}'
    )
    assert answer_opening.sources_grammar([3, 1, 2, 4]) == (
        'root ::= number(", " number(", " number)?)? "]" after\n'
        f'number ::= "1" | "2" | "3" | "4"\n{after}'
    )
    assert answer_opening.read_sources("3, 1, 3, 9", [1, 3]) == [3, 1]
    assert answer_opening.opening([3, 1]) == '{"sources": [3, 1], "answer": "'


async def test_without_a_grammar_the_answer_is_one_constrained_reply(
    shop: Path, settings: Settings
) -> None:
    reply = '{"sources": [1], "answer": "Express costs 6 pounds."}'

    def one(request: ModelRequest) -> str:
        assert request.output_schema is not None and request.grammar is None
        assert request.messages[-1].role != "assistant"
        return reply

    model = FunctionModel(one, model_id="local:small", profile=SMALL, continues=True)
    turns = await two_turns(shop, settings, model, "How much is express delivery?", "How fast?")
    assert len(turns.turn1) == 1 and turns.answers[0].text == "Express costs 6 pounds. [1]"


# --- an answer without passages (after tool results): its start given, a word first ---


def results_model(answer: str) -> FunctionModel:
    """A model that continues: the lookup's id is given (the runtime calls it), then it
    writes what follows the answer's given start."""

    def reply(request: ModelRequest) -> str:
        last = request.messages[-1]
        assert last.role == "assistant" and last.text == answer_opening.ANSWER_START
        assert request.output_schema is None
        assert request.grammar == in_latin(answer_opening.WORDED_ANSWER_GRAMMAR)
        return answer

    return FunctionModel(reply, model_id="local:small", profile=GRAMMAR, continues=True)


async def test_an_answer_after_tool_results_starts_with_its_json_given(
    shop: Path, settings: Settings
) -> None:
    # The 0.5B, constrained by the schema alone, wrote the step's placeholder
    # ('{"answer": "..."}') as its answer after a lookup, 1 run in 5-8.
    model = results_model('SO-1002 has shipped."}')
    turns = await two_turns(shop, settings, model, "Where is SO-1002?", "Where is SO-1003?")
    [answer] = turns.turn1
    assert tool_results(answer)[0].name == "order_status"
    assert turns.answers[0].text == "SO-1002 has shipped."
    # the conversation keeps the whole reply: the follow-up begins with it
    whole = Message.assistant('{"answer": "SO-1002 has shipped."}')
    before = [*answer.messages[:-1], whole]
    for request in turns.turn2:
        assert wire(request.messages[: len(before)]) == wire(before)


def test_the_answer_without_passages_starts_with_a_letter_or_a_digit() -> None:
    first = answer_opening.WORDED_ANSWER_GRAMMAR.split("first ::= ", 1)[1].split("\n", 1)[0]
    assert answer_opening.WORDED_ANSWER_GRAMMAR.startswith('root ::= first char* "\\"}"\n')
    # "...", a JSON brace or quote, a space or a list's dash cannot start it; a word can,
    # in any script (the general punctuation block, "…" and curly quotes, cannot).
    assert first == r"[0-9A-Za-z\u00C0-\u1FFF\u2070-\U0010FFFF]"
    assert answer_opening.ANSWER_GRAMMAR.split("\n", 1)[1] in answer_opening.WORDED_ANSWER_GRAMMAR


async def test_internal_text_after_the_given_start_is_still_kept_from_the_user(
    shop: Path, settings: Settings
) -> None:
    replies = iter(['your answer to the question, from the function results"}', "It shipped."])

    def reply(request: ModelRequest) -> str:
        if request.messages[-1].role == "assistant":
            assert request.messages[-1].text == answer_opening.ANSWER_START
        return next(replies)

    model = FunctionModel(reply, model_id="local:small", profile=GRAMMAR, continues=True)
    events = await ask(shop, settings, model, "Where is SO-1002?")
    assert events[-1].answer.text == "It shipped."  # type: ignore[attr-defined]
    assert "your answer" not in "".join(e.text for e in events if isinstance(e, TextDelta))
    again = model.requests[-1]  # asked once more, in plain text, after the whole reply
    assert again.output_schema is None and again.grammar is None
    assert again.messages[-2].text == (
        '{"answer": "your answer to the question, from the function results"}'
    )


def test_an_answer_is_given_its_opening_and_a_grammar_kept_to_the_runs_scripts() -> None:
    english = RunState("r", "c", "Express costs 6 pounds, £6 – “next day”.", None, [])
    with_sources = answer_opening.given([1, 3], english)
    assert with_sources.text == '{"sources": [1, 3], "answer": "'
    assert with_sources.grammar == in_latin(answer_opening.ANSWER_GRAMMAR)
    without = answer_opening.given((), english)
    assert without.text == answer_opening.ANSWER_START
    assert without.grammar == in_latin(answer_opening.WORDED_ANSWER_GRAMMAR)
    chinese = RunState("r", "c", "快递多少钱？", None, [])
    assert "\\u4E00" not in answer_opening.given([2], chinese).grammar  # Han is written here
    assert "\\u4E00" in without.grammar
