"""The decision step of a stepped turn (copilot/steps.py): the options one decision
offers the model (`options`: the tools a message asks for and can fill, `answer`,
`ask`, `not_covered`, and the turns decided without it), and its reply read
(`parse_decision`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pilothouse.copilot import given_ids, steps
from pilothouse.copilot.asked_slots import AskedFor, resumed_by
from pilothouse.copilot.grounded_args import evidence_from
from pilothouse.copilot.looked_up import answered
from pilothouse.copilot.user_intent import (
    Reading,
    about_their_own,
    allows,
    asks_for_state,
    named_tools,
    read,
)
from pilothouse.tools.base import Tool
from pilothouse.tools.identifiers import identifying_parameters
from pilothouse.types import Message

Decision = Literal["answer", "call", "ask", "not_covered"]
DECISIONS: tuple[Decision, ...] = ("answer", "call", "ask", "not_covered")
CALL_PREFIX = "call:"


@dataclass(frozen=True, slots=True)
class Options:
    """The choices one decision step offers, and the tools held back.
    `knowledge_first`: the turn answers without asking the model (see `options`)."""

    choices: tuple[str, ...]
    held_back: tuple[str, ...] = ()
    knowledge_first: bool = False
    reading: Reading = "unknown"
    """How the user's message read (copilot/user_intent.py)."""
    ask_for: tuple[AskedFor, ...] = ()
    """The slots a question back would ask for: the identifying parameters of the tools
    the message asks for that nothing the user gave could fill."""
    must_ask: bool = False
    """The turn asks for `ask_for` without a decision (see `options`)."""
    given: tuple[str, ...] = ()
    """The tools the message gives the id for and asks for (copilot/given_ids.py): the
    decision is one of them, taken without the model (`choices` are their calls)."""
    resumed: bool = False
    """The message gives the value the copilot asked for: only its tools are offered."""
    read_as: str = ""
    """The message as read: a follow-up that only swaps the id reads as the request it
    follows with the new id (copilot/given_ids.py `swapped`)."""
    given_before: tuple[str, ...] = ()
    """A request that gives no id of its own: the tools that take the id the user gave
    earlier (copilot/given_ids.py `given_before`); copilot/turns.py calls the one
    `choose` picks when it changes data."""
    listed: str | None = None
    """A question for the state of the user's own things that one read-only tool
    without parameters lists: that tool, called without the model (see `options`)."""

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"decision": {"type": "string", "enum": list(self.choices)}},
            "required": ["decision"],
            "additionalProperties": False,
        }

    def step(self) -> str:
        return steps.DECIDE_STEP.format(options=", ".join(f'"{c}"' for c in self.choices))


def options(
    tools: Sequence[Tool],
    question: str,
    earlier: Sequence[Message],
    *,
    has_identifier: bool,
    passages: bool,
    strict: bool,
    asked: Sequence[AskedFor] | None = None,
) -> Options:
    """What a decision on `question` may choose; `earlier`: the conversation before
    it; `passages`: retrieval kept some (above the floor when `strict`); `asked`: what
    the copilot's last answer asked for (copilot/asked_slots.py; None: not known, read
    from `earlier` by `asked_in`).

    A message that gives the value asked for resumes that request: only the asked-for
    tools are offered (`resumed`). Otherwise a tool is held back when one of its
    required parameters is an inferred identifier and nothing the user gave looks like
    one, or when the user's message, read first (`reading`), does not ask for it
    (copilot/user_intent.py), or when the request names other tools by its verb
    ("Please start a return": only the tool whose description starts "Start a
    return"); `answer` is offered when there is something to answer from;
    `not_covered` is not, for a request with an id that an offered tool takes, nor for
    a question for the state of the user's own things that an offered read-only tool
    without ids names ("What tickets have I got open?": `list_my_tickets`); when one
    such tool takes no required parameter, it is called without a decision (`listed`).

    Asking for a missing id (`must_ask`): a request, or a question that asks for the
    state of one of the user's own things ("Is my ticket resolved?"), whose tools are
    held back only for their missing id, is answered with a question for it, without a
    decision, when such a tool's name names the thing ("Can you check my ticket?":
    `ticket_status`) or no other tool is left to offer ("Please start a return").

    An id given (`given`): a message that gives a value of the kind a tool's
    identifying parameter takes (copilot/asked_slots.py `values`) asks for a lookup or
    an action on that thing, unless it is a question that also asks how things work;
    the decision is then one of the tools that take it (copilot/given_ids.py
    `wanted`), chosen without the model (the 1.5B answered "Where are we with
    HD-1002?" from the handbook, the 0.5B made "I want to send back SO-1001" an
    `order_status`). A follow-up that only swaps the id is read as the request it
    follows (`read_as`); a request that gives no id of its own may be decided on the
    id given before (`given_before`; both copilot/given_ids.py).

    Knowledge first: a question (`reading`) that strict grounding found passages for
    (`knowledge_found`), with no tool left to offer, is answered from them without a
    decision. The 0.5B chose `not_covered` or `ask` on knowledge questions whose
    passages answered them. Not when a lookup was held back because its result is
    above (copilot/looked_up.py): that result is a source too, and the model decides
    ("When should it arrive?" after looking SO-1002 up)."""
    slots = asked_in(tools, earlier, strict) if asked is None else tuple(asked)
    resumed = resumed_by(question, slots, tools)
    if resumed:
        names = {t.name for t in resumed}
        return Options(
            tuple(CALL_PREFIX + t.name for t in resumed),
            tuple(t.name for t in tools if t.name not in names),
            reading="request",
            resumed=True,
            read_as=question,
        )
    follows = given_ids.swapped(question, earlier, tools)
    question = follows or question  # "What about HD-1003?": the request it follows
    reading = read(question, earlier, tools)
    # A lookup whose result the conversation holds is not run again for a question
    # (copilot/looked_up.py); that result is then something to answer from.
    done = {t.name for t in tools if reading == "question" and answered(t, question, earlier)}
    can_answer, knowledge_found = passages or not strict or bool(done), passages and strict
    choices: list[str] = ["answer"] if can_answer else []
    held_back: list[str] = []
    offered: list[Tool] = []
    wanted: list[Tool] = []
    named = named_tools(question, tools) if reading == "request" else set()
    lookup = reading == "question" and asks_for_state(question)
    for tool in tools:
        other = bool(named) and tool.name not in named
        unasked = (
            other
            or tool.name in done
            or not allows(
                tool,
                reading,
                question,
                has_identifier=has_identifier,
                knowledge_found=knowledge_found,
            )
        )
        needs_id = not has_identifier and _needs_an_identifier(tool)
        if unasked or needs_id:
            held_back.append(tool.name)
            mine = about_their_own(question, tool, one=True)
            if needs_id and not other and (reading == "request" or (lookup and mine)):
                wanted.append(tool)
        else:
            choices.append(CALL_PREFIX + tool.name)
            offered.append(tool)
    theirs = [t for t in wanted if about_their_own(question, t, one=True)]
    must_ask = bool(theirs) or (bool(wanted) and not offered)
    choices.append("ask")
    # A request with an id that an offered tool takes is covered by that tool (the
    # 1.5B said "not covered" to "Can you check on order SO-1003 for me?").
    # Nor is a request for an action that waits only for its id: it gets a question
    # for it ("It arrived damaged, please send it back for me." and no order number).
    covered = has_identifier and any(map(_takes_an_id, offered))
    acting = any(not t.read_only for t in wanted)
    if not (reading == "request" and (covered or acting)) and not (
        lookup and any(_lists_theirs(t, question) for t in offered)
    ):
        choices.append("not_covered")
    first = (
        reading == "question"
        and knowledge_found
        and can_answer
        and not must_ask
        and not done  # a lookup's result above is a source too: the model decides
        and not any(c.startswith(CALL_PREFIX) for c in choices)
    )
    given = () if must_ask else given_ids.wanted(question, reading, tools, named)
    if given:
        choices, first = [CALL_PREFIX + t.name for t in given], False
        held_back = [t.name for t in tools if t not in given]
    # Their own things, listed ("What tickets have I got open?"): only the tool knows
    # them, so it is called (the 1.5B said "not covered", asked for a ticket number,
    # or answered "you have no open tickets" from the handbook).
    lists = [t for t in offered if lookup and _lists_theirs(t, question) and not _required(t)]
    listed = lists[0].name if len(lists) == 1 and not (given or must_ask) else None
    if listed is not None:
        choices, first = [CALL_PREFIX + listed], False
        held_back = [t.name for t in tools if t.name != listed]
    before: tuple[Tool, ...] = ()
    if reading == "request" and not (given or must_ask or follows):
        before = given_ids.given_before(question, earlier, tools, named)
        before = tuple(t for t in before if t in offered)
    ask_for = tuple(
        AskedFor(tool.name, name)
        for tool in (theirs or wanted)
        for name, why in identifying_parameters(tool.parameters).items()
        if why != "declared" or name in _required(tool)
    )
    return Options(
        tuple(choices),
        tuple(held_back),
        first,
        reading,
        ask_for,
        must_ask and bool(ask_for),
        tuple(t.name for t in given),
        read_as=question,
        given_before=tuple(t.name for t in before),
        listed=listed,
    )


def asked_in(
    tools: Sequence[Tool], earlier: Sequence[Message], strict: bool
) -> tuple[AskedFor, ...]:
    """What the copilot's last answer in `earlier` asked for, read from the
    conversation itself (for one whose turns the client wrote: an eval's conversation,
    a chat completion's messages): when that answer asks a question, the slots the
    user's message before it would have asked for."""
    at = _last_index(earlier, "assistant")
    if at is None or "?" not in earlier[at].text:
        return ()
    before = _last_index(earlier[:at], "user")
    if before is None:
        return ()
    request, context = earlier[before].text, earlier[:before]
    found = options(
        tools,
        request,
        context,
        has_identifier=evidence_from(request, context, ()).has_identifier,
        passages=True,
        strict=strict,
        asked=(),
    )
    return found.ask_for


def _last_index(messages: Sequence[Message], role: str) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == role and messages[index].text.strip():
            return index
    return None


def _required(tool: Tool) -> set[str]:
    return set(tool.spec().parameters.get("required") or ())


def _lists_theirs(tool: Tool, question: str) -> bool:
    """Whether `tool` answers a question for the state of the user's own things that
    its name names, with no id to give: a read-only tool without identifying
    parameters ("What tickets have I got open?": `list_my_tickets`; the 1.5B said "not
    covered")."""
    return (
        tool.read_only
        and not identifying_parameters(tool.parameters)
        and about_their_own(question, tool)
    )


def _takes_an_id(tool: Tool) -> bool:
    return tool.grounded != "off" and bool(identifying_parameters(tool.parameters))


def _needs_an_identifier(tool: Tool) -> bool:
    if tool.grounded == "off":
        return False
    spec = tool.spec()
    required = set(spec.parameters.get("required") or ())
    inferred = identifying_parameters(tool.parameters)
    return any(why != "declared" for name, why in inferred.items() if name in required)


def parse_decision(text: str, offered: Options) -> tuple[Decision, str | None] | None:
    """The decision and the tool it names, or None when the reply is not one offered."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    choice = value.get("decision") if isinstance(value, dict) else None
    if not isinstance(choice, str) or choice not in offered.choices:
        return None
    if choice.startswith(CALL_PREFIX):
        return "call", choice.removeprefix(CALL_PREFIX)
    return choice, None  # type: ignore[return-value]
