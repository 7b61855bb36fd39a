"""The stepped turn: what a model with emulated tools is asked, one constrained step
at a time.

Small local models decide badly inside one free-form turn whether to call a tool, and
cite less inside the emulated tool envelope. For them (profile `native_tools = false`
with `json_schema = true`) a turn is a sequence of small JSON-constrained steps:

1. **decide** (when the copilot has tools and no function results are in yet; after
   them the turn answers): `{"decision": ...}`, one of
   `answer` (from the passages), `call:<tool>`, `ask` (the user wants what a tool does
   but did not give what it needs) or `not_covered`. A tool whose identifying
   arguments nothing the user gave could fill is not offered (it could only be called
   with an invented value); `answer` is not offered under strict grounding when no
   passage is relevant enough;
2. **arguments** of the chosen tool, constrained to its parameter schema;
3. **answer**: `{"sources": [n, ...], "answer": "..."}` when there are passages (the
   model names the passages it uses before it writes: citing is the easy path, and
   the numbers can only be passages it was given), else `{"answer": "..."}`.

Everything stable goes first (the copilot's instructions, then the tools and these
rules, appended to its system message) and each request differs from the one before
only in its last line, the step, so a local model reuses its cached prompt: a decision
costs the few tokens of its step and its answer.

This module holds the texts and schemas; the runtime (copilot/turns.py) runs them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pilothouse.copilot.asked_slots import AskedFor, resumed_by, supplies
from pilothouse.copilot.grounded_args import evidence_from, spoken
from pilothouse.copilot.user_intent import (
    Reading,
    about_their_own,
    allows,
    asks_for_state,
    named_tools,
    read,
)
from pilothouse.models.emulation.decoder import JsonStringReader
from pilothouse.tools.base import Tool
from pilothouse.tools.identifiers import identifying_parameters, mask_identifiers
from pilothouse.types import Message

Decision = Literal["answer", "call", "ask", "not_covered"]
DECISIONS: tuple[Decision, ...] = ("answer", "call", "ask", "not_covered")
CALL_PREFIX = "call:"

RULES = """\
# How to reply
Every request ends with a step. Reply with JSON only, as the step says.
- "Step: decide" chooses what to do next:
  "answer" when the passages above the question answer it, or function results do;
  "call:NAME" when the user asks you to do what function NAME does, or asks about \
their own record that it looks up, and gave what it needs (an id, a number);
  "ask" when the user wants what a function does but did not give a detail it needs;
  "not_covered" when the passages do not answer the question and no function does \
what the user asks.
- "Step: arguments" writes a function's arguments. Use only values the user wrote or \
a function returned, never an example.
- "Step: answer" replies to the user."""

DECIDE_STEP = 'Step: decide. Reply {{"decision": ...}} with one of: {options}.'
ARGUMENTS_STEP = "Step: arguments for {name}. Reply with its arguments as a JSON object."
ANSWER_CITED_STEP = (
    'Step: answer. Reply {"sources": [...], "answer": "..."}: the numbers of the passages '
    "you use, then your answer to the question from them."
)
ANSWER_STEP = 'Step: answer. Reply {"answer": "..."} with your answer to the question.'
RESULTS_STEP = (
    'Step: answer. Reply {"answer": "..."} with your answer to the question, from the '
    "function results."
)
ASK_STEP = (
    'Step: answer. Reply {{"answer": "..."}} with one short question asking the user for {what}.'
)
LIMIT_STEP = (
    'Step: answer. Reply {"answer": "..."} with what you have, and say that you could not finish.'
)
AGAIN_STEP = (
    "Step: answer again. That reply repeated these instructions. Write your own answer "
    "to the question for the user, in plain text, not JSON, citing the passages you use "
    "as [n]."
)
"""Asked once when every sentence of an answer was internal text (a small model copies
a step's wording): the same request, the reply it gave, then this, unconstrained."""
STEP_TEXTS = (
    RULES,
    DECIDE_STEP,
    ARGUMENTS_STEP,
    ANSWER_CITED_STEP,
    ANSWER_STEP,
    RESULTS_STEP,
    ASK_STEP,
    LIMIT_STEP,
    AGAIN_STEP,
)
"""Every text of this protocol (the answer guard keeps them from the user)."""


def describe_tools(tools: Sequence[Tool]) -> str:
    """The tools for the system message: one signature line each, then the
    parameters' descriptions, with concrete identifiers masked (SO-1001 -> SO-NNNN)
    so there is nothing to copy."""
    lines = ["# Functions"]
    for tool in tools:
        spec = tool.spec()
        properties = spec.parameters.get("properties") or {}
        required = set(spec.parameters.get("required") or ())
        names = ", ".join(p if p in required else f"{p}?" for p in properties)
        lines.append(f"- {spec.name}({names}): {mask_identifiers(_one_line(spec.description))}")
        for name, schema in properties.items():
            if not isinstance(schema, dict):
                continue
            detail = _one_line(str(schema.get("description", "")))
            if "enum" in schema:
                detail = f"{detail} One of: {', '.join(map(str, schema['enum']))}.".strip()
            if detail:
                lines.append(f"  {name}: {mask_identifiers(detail)}")
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def system_suffix(tools: Sequence[Tool]) -> str:
    """What the stepped turn appends to the copilot's system message."""
    return f"{describe_tools(tools)}\n\n{RULES}" if tools else RULES


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
    call_now: str | None = None
    """The lookup the message gives the id for: called without a decision."""
    resumed: bool = False
    """The message gives the value the copilot asked for: only its tools are offered."""

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"decision": {"type": "string", "enum": list(self.choices)}},
            "required": ["decision"],
            "additionalProperties": False,
        }

    def step(self) -> str:
        return DECIDE_STEP.format(options=", ".join(f'"{c}"' for c in self.choices))


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
    `not_covered` is not, for a request with an id that an offered tool takes.

    Asking for a missing id (`must_ask`): a request, or a question that asks for the
    state of one of the user's own things ("Is my ticket resolved?"), whose tools are
    held back only for their missing id, is answered with a question for it, without a
    decision, when such a tool's name names the thing ("Can you check my ticket?":
    `ticket_status`) or no other tool is left to offer ("Please start a return").

    An id given for a lookup (`call_now`): a request, or a question that asks for the
    state of a specific thing ("Has HD-1006 been fixed yet?"), that gives a value of
    the identifying parameter's kind (copilot/asked_slots.py `supplies`) for the one
    offered tool that takes an id, a read-only one, calls it without a decision (the
    1.5B answered "Has HD-1006 been fixed yet?" from the handbook, the 0.5B made "I'd
    like an update on HD-1003" a `create_ticket`).

    Knowledge first: a question (`reading`) that strict grounding found passages for
    (`knowledge_found`), with no tool left to offer, is answered from them without a
    decision. The 0.5B chose `not_covered` or `ask` on knowledge questions whose
    passages answered them."""
    reading = read(question, earlier, tools)
    slots = asked_in(tools, earlier, strict) if asked is None else tuple(asked)
    resumed = resumed_by(question, slots, tools)
    if resumed:
        names = {t.name for t in resumed}
        return Options(
            tuple(CALL_PREFIX + t.name for t in resumed),
            tuple(t.name for t in tools if t.name not in names),
            reading="request",
            resumed=True,
        )
    can_answer, knowledge_found = passages or not strict, passages and strict
    choices: list[str] = ["answer"] if can_answer else []
    held_back: list[str] = []
    offered: list[Tool] = []
    wanted: list[Tool] = []
    named = named_tools(question, tools) if reading == "request" else set()
    lookup = reading == "question" and asks_for_state(question)
    for tool in tools:
        other = bool(named) and tool.name not in named
        unasked = other or not allows(
            tool, reading, question, has_identifier=has_identifier, knowledge_found=knowledge_found
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
    if not (reading == "request" and has_identifier and any(map(_takes_an_id, offered))):
        choices.append("not_covered")
    first = (
        reading == "question"
        and knowledge_found
        and can_answer
        and not must_ask
        and not any(c.startswith(CALL_PREFIX) for c in choices)
    )
    takers = [t for t in offered if _takes_an_id(t)]
    given = [t for t in takers if t.read_only and _given_for(question, t)]
    state = reading == "request" or (reading == "question" and asks_for_state(question))
    call_now = given[0].name if state and len(takers) == 1 and given else None
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
        call_now,
    )


def _given_for(question: str, tool: Tool) -> bool:
    """Whether `question` gives a value for one of `tool`'s identifying parameters."""
    return any(supplies(question, tool, name) for name in identifying_parameters(tool.parameters))


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


def answer_schema(passages: Sequence[int]) -> dict[str, Any]:
    """`{"sources": [...], "answer": ...}` over these passage numbers (at least one),
    or `{"answer": ...}` when there are none."""
    answer = {"type": "string", "minLength": 1}
    if not passages:
        return {
            "type": "object",
            "properties": {"answer": answer},
            "required": ["answer"],
            "additionalProperties": False,
        }
    return {
        "type": "object",
        "properties": {
            "sources": {
                "type": "array",
                "items": {"type": "integer", "enum": sorted(set(passages))},
                "minItems": 1,
                "maxItems": min(3, len(set(passages))),
            },
            "answer": answer,
        },
        "required": ["sources", "answer"],
        "additionalProperties": False,
    }


def parse_answer(text: str) -> tuple[str | None, list[int]]:
    """The answer and the passage numbers of a constrained answer; (None, []) when
    the reply is not that JSON (cut off, for one)."""
    try:
        value = json.loads(text)
    except ValueError:
        return None, []
    if not isinstance(value, dict) or not isinstance(value.get("answer"), str):
        return None, []
    sources = value.get("sources")
    numbers = [n for n in sources if isinstance(n, int)] if isinstance(sources, list) else []
    return value["answer"], numbers


def ask_what(slots: Sequence[AskedFor] = ()) -> str:
    """What an ask step asks for: the asked-for slots' parameters ("the ticket id"),
    else "the details you need"."""
    names = list(dict.fromkeys(slot.parameter for slot in slots))
    if not names:
        return "the details you need"
    return " and ".join(f"the {spoken(n)}" for n in names)


def repeats(reply: str, question: str) -> bool:
    """Whether `reply` only says the user's `question` again (a small model's "ask"
    for a knowledge question: "Do you need the original box to send something
    back?"): most of its words are the question's."""
    said = _words(reply)
    asked = set(_words(question)) | {"you", "your", "i", "my", "me", "do", "does", "is"}
    if len(said) < 3:
        return False
    return sum(1 for w in said if w in asked) / len(said) >= 0.75


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def capabilities(tools: Sequence[Tool]) -> str:
    """What the copilot can do besides answering from its knowledge, for a "not
    covered" answer: the first sentence of each tool's description."""
    things = []
    for tool in tools:
        first = _one_line(tool.description).split(". ")[0].rstrip(".")
        if first:
            things.append(first[0].lower() + first[1:])
    if not things:
        return ""
    return "I can " + "; ".join(things) + "."


class AnswerStream:
    """Reads the `"answer"` string out of a constrained answer as it streams, so the
    user sees it token by token (the keys before it wait)."""

    _KEY = re.compile(r'"answer"\s*:\s*"')

    def __init__(self) -> None:
        self.raw = ""
        self.text = ""
        """The answer decoded so far."""
        self._reader: JsonStringReader | None = None
        self._done = False

    def feed(self, text: str) -> str:
        self.raw += text
        if self._done:
            return ""
        if self._reader is None:
            match = self._KEY.search(self.raw)
            if match is None:
                return ""
            self._reader = JsonStringReader()
            pending = self.raw[match.end() :]
        else:
            pending = self._reader.rest + text
        piece, self._done = self._reader.read(pending)
        self.text += piece
        return piece


def parse_arguments(text: str) -> tuple[dict[str, Any], str | None]:
    """The arguments of an arguments step, or ({}, the raw text) when they are not a
    JSON object (the tool then reports the error to the model)."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}, text
    return (value, None) if isinstance(value, dict) else ({}, text)


def parameter_descriptions(tools: Sequence[Tool]) -> list[str]:
    """Every parameter description of `tools` (a model must not pass one as a value,
    nor answer with one)."""
    found: list[str] = []
    for tool in tools:
        properties = tool.parameters.get("properties")
        if isinstance(properties, dict):
            found.extend(
                str(s["description"])
                for s in properties.values()
                if isinstance(s, dict) and s.get("description")
            )
    return found
