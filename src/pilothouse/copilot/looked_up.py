"""Lookups whose result a conversation already holds: a question that follows one is
not a reason to run it again.

A read-only tool that takes an identifier is offered to the decision step whenever the
conversation holds one (copilot/user_intent.py `allows`), so after "What is the status
of order SO-1001?" every later question of the conversation could look SO-1001 up
again, and the 1.5B did: "How do I get a return label?" became a second `order_status`
(issue 20's follow-up sets; a needless call, answered with the order's status instead
of the label). Its result is in the history, above the question, for the answer to
read. So for a question (not a request: "Can you check it again?" still runs it), such
a tool is held back when this tool has already returned a result for every value the
user gave in the conversation for its identifying parameters and the question gives
none of its own ("Has SO-1001 arrived now?" names it, so it is looked up; so is an id
the user gave earlier that was not looked up yet). An error is a result too: after
"Error: there is no ticket HD-1001", the 1.5B looked HD-1001 up again, for the same
error, when asked which number to call about it.

Nor is such a question answered with a passage quoted in place of the result
(`about_a_result`): after "Where is my order SO-1002?" and its lookup, "When should it
arrive?" was given the delivery-times sentence of the shipping passage by the 0.5B's
quoted answers (copilot/quoted_answer.py), where the result held the expected date. A
question whose subject is the thing just looked up (copilot/user_intent.py
`asks_about_it`) is answered by the model in its own words, the result above it and
the passages beside it; "How many days do I have to return it?" is still quoted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pilothouse.copilot.asked_slots import values
from pilothouse.copilot.user_intent import asks_about_it
from pilothouse.tools.base import Tool
from pilothouse.tools.identifiers import identifying_parameters, squashed
from pilothouse.types import Message


def answered(tool: Tool, question: str, earlier: Sequence[Message]) -> bool:
    """Whether `tool`'s lookups for the ids the user gave in `earlier` (the
    conversation before `question`) all returned a result there (see the module doc)."""
    parameters = identifying_parameters(tool.parameters)
    if not tool.read_only or not parameters:
        return False
    if any(values(question, tool, name) for name in parameters):
        return False
    looked = _looked_up(tool, parameters, earlier)
    if not looked:
        return False
    given = {
        squashed(value)
        for message in earlier
        if message.role == "user" and not message.tool_results
        for name in parameters
        for value in values(message.text, tool, name)
    }
    return all(_within(value, looked) for value in given)


def _looked_up(tool: Tool, parameters: Iterable[str], earlier: Sequence[Message]) -> set[str]:
    """The identifying values of `tool`'s calls in `earlier` that returned a result."""
    ok = {r.tool_call_id for m in earlier for r in m.tool_results}
    return {
        squashed(str(call.arguments[name]))
        for message in earlier
        for call in message.tool_calls
        if call.name == tool.name and call.id in ok
        for name in parameters
        if isinstance(call.arguments.get(name), str | int)
    }


def _within(value: str, looked: set[str]) -> bool:
    # "1001" for "SO-1001": the digits alone name the looked-up one.
    return value in looked or (value.isdigit() and any(v.endswith(value) for v in looked))


def about_a_result(question: str, earlier: Sequence[Message]) -> bool:
    """Whether `question` asks about the thing a tool returned a result for in the
    last exchange of `earlier` (the conversation before it; see the module doc)."""
    said = [i for i, m in enumerate(earlier) if m.role == "user" and not m.tool_results]
    if said and earlier[said[-1]].text == question:  # the question itself, stored
        said.pop()
    last = earlier[said[-1] + 1 :] if said else earlier
    if not any(m.tool_results for m in last):
        return False
    return asks_about_it(question)
