"""Grounded arguments: a tool call runs only with identifying values someone gave.

Before a call runs, or is offered to a person for approval, every value of an
identifying parameter (tools/identifiers.py: declared, or inferred for ids, emails,
keys and parameters whose description shows an example) must appear in the evidence:
what the user wrote in this conversation, what earlier tool results returned, or a
value bound in the configuration. The assistant's own words are not evidence: a
model that wrote an id in its answer invented it there first. Nor is a quantity, a
price or a model number the user wrote ("It weighs 120 pounds", "I paid £120.50",
"the 2400 model": tools/identifiers.py `looks_like_a_quantity`): it is not an
identifier they gave, so `order_id="120"` does not pass; a bare number with none of
those words does ("Is 3031 here yet?"), and so does a bare year (a four-digit order
number may look like one, and the user who wrote it has no other way to give it). A
tool's result and a bound value are taken as written.

Matching forgives what people do when they type identifiers: case, spaces and
separators (`so1002`, `SO 1002` and `SO-1002` are the same), and a prefix the model
adds to a number the user gave (`HD-1001` for "ticket 1001").

Free text holds no identifier nobody gave either (ninth round): a value of a parameter
that is not identifying (a ticket's description, a return's reason) may name things,
and every identifier in it (three digits or more, or an email, tools/identifiers.py
`identifiers_in_text`: not a year, a quantity or a price) must appear in the same
evidence. The 1.5B wrote "Dell P2725H" (the desk monitor of a catalogue passage, which
the user never wrote) into a ticket's description: a person approving it, and the
analyst after, would read it as the user's. A passage is no evidence here either: the
model picked one of the things it names. `invented` is the rule, value by value, that
both this check and the evals' count of invented identifiers apply
(pipeline/metrics/grounded.py, benchmarks/grounded/run.py). The stepped turn leaves
such identifiers out of the free text the model wrote before the check
(copilot/argument_words.py `without_ungiven_identifiers`); a call that still carries
one is blocked like any other (problem `not_given_in_text`).

A second check holds for every string argument: a value that repeats a parameter's or
the tool's own description ("A short title you write from the user's words"), all or
most of it, is the model copying its instructions, never the user's words. (An example
quoted in a description is a value, and is left to the first check.)
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pilothouse.copilot import runtime_notes as notes
from pilothouse.tools.base import Tool
from pilothouse.tools.identifiers import (
    identifiers_in_text,
    identifying_parameters,
    looks_like_a_quantity,
    name_in_words,
    squashed,
)
from pilothouse.types import Message, ToolCallPart

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[-_./@+:#][A-Za-z0-9]+)*")
_PREFIXED = re.compile(r"^([a-z]{1,6})([0-9][a-z0-9]*)$")
_WORD = re.compile(r"[a-z0-9']+")

Problem = Literal["not_given", "not_given_in_text", "description"]


@dataclass(frozen=True, slots=True)
class Ungrounded:
    """One argument that fails the check."""

    parameter: str
    value: str
    problem: Problem

    def to_dict(self) -> dict[str, str]:
        return {"parameter": self.parameter, "value": self.value, "problem": self.problem}


def _squash(text: str) -> str:
    return squashed(text).strip(".")


class Evidence:
    """What identifying values may come from, as normalised tokens: `said`, what the
    user wrote (its quantities left out, see the module doc), and `given`, tool
    results and bound values (every token)."""

    def __init__(self, said: Iterable[str], given: Iterable[str] = ()):
        self._forms: set[str] = set()
        self._identifier = False
        for text in said:
            self._read(text, user=True)
        for text in given:
            self._read(text, user=False)

    def _read(self, text: str, *, user: bool) -> None:
        found = list(_TOKEN.finditer(text))
        tokens: list[str | None] = []
        for match in found:
            token = match.group(0)
            quantity = looks_like_a_quantity(text, match.start(), match.end())
            if (sum(c.isdigit() for c in token) >= 3 or "@" in token) and not quantity:
                self._identifier = True
            tokens.append(None if user and quantity else token)
        for i, kept in enumerate(tokens):
            if kept is None:
                continue
            self._add(kept)
            for width in (2, 3):  # "SO 1002" -> so1002
                window = tokens[i : i + width]
                if len(window) == width and None not in window:
                    self._forms.add(_squash("".join(t for t in window if t)))

    def _add(self, token: str) -> None:
        self._forms.add(_squash(token))
        for part in re.split(r"[-_./:#+]", token):
            if part:
                self._forms.add(_squash(part))

    def gives(self, value: str) -> bool:
        """`value` appears in the evidence (see the module doc for what counts)."""
        squashed = _squash(value)
        if not squashed:
            return True  # nothing identifying in it (an empty string is the schema's business)
        if squashed in self._forms:
            return True
        prefixed = _PREFIXED.match(squashed)  # HD-1001 for "ticket 1001"
        return (
            prefixed is not None
            and len(prefixed.group(2)) >= 3
            and (prefixed.group(2) in self._forms)
        )

    @property
    def has_identifier(self) -> bool:
        """Whether any token could be an identifier (three digits or more, or an @:
        "SO-1002", "1001", an email; not "floor 4" or "T2", nor a quantity, a price or
        a model number: "120 pounds", "the 2400 model"). Without one, a call that
        needs an inferred id cannot pass, so it need not be offered."""
        return self._identifier


def evidence_from(
    question: str,
    conversation: Sequence[Message],
    run_messages: Sequence[Message],
    bindings: Iterable[Any] = (),
) -> Evidence:
    """The evidence of a run: the question and the conversation's user messages (what
    the user wrote), the conversation's and the run's tool results, and bound values."""
    said = [question]
    given: list[str] = []
    for message in (*conversation, *run_messages):
        if message.role == "user":
            said.append(message.text)
        given.extend(result.content for result in message.tool_results)
    given.extend(str(value) for value in bindings if isinstance(value, str | int))
    return Evidence(said, given)


def invented(value: Any, evidence: Evidence, *, numbers: bool = False) -> list[str]:
    """The identifiers in `value` (a string, or lists and objects of strings) that
    `evidence` does not give: those `identifiers_in_text` finds (see the module doc).
    With `numbers`, a number is read as text too (the evals' count, which does not
    know which parameters identify; the check reads a number only as an identifying
    parameter's value, whole: a count of 100 names nothing)."""
    if isinstance(value, int) and not isinstance(value, bool) and numbers:
        value = str(value)
    if isinstance(value, str):
        return [found for found in identifiers_in_text(value) if not evidence.gives(found)]
    if isinstance(value, Mapping):
        items: list[Any] = list(value.values())
    elif isinstance(value, list):
        items = value
    else:
        return []
    return [found for item in items for found in invented(item, evidence, numbers=numbers)]


def check_call(tool: Tool, call: ToolCallPart, evidence: Evidence) -> list[Ungrounded]:
    """The arguments of `call` that fail the check (empty: it may run)."""
    problems: list[Ungrounded] = []
    arguments = call.arguments
    identifying = identifying_parameters(tool.parameters)
    for name, value in arguments.items():
        if name in tool.bindings:
            continue  # replaced by the configured value anyway
        values = value if isinstance(value, list) else [value]
        if name in identifying:
            for item in values:
                free = isinstance(item, str | int) and not isinstance(item, bool)
                if free and not evidence.gives(str(item)):
                    problems.append(Ungrounded(name, str(item), "not_given"))
                    break
        else:
            named = invented(value, evidence)
            if named:
                problems.append(Ungrounded(name, ", ".join(named), "not_given_in_text"))
        if any(
            isinstance(item, str) and _repeats_a_description(item, tool, name) for item in values
        ):
            problems.append(Ungrounded(name, str(value), "description"))
    return problems


def _repeats_a_description(value: str, tool: Tool, parameter: str) -> bool:
    words = _WORD.findall(value.lower())
    if len(words) < 4:
        return False
    text = " ".join(words)
    for description in _descriptions(tool, parameter):
        reference = " ".join(_WORD.findall(description.lower()))
        if not reference:
            continue
        # The description itself (or most of it), not an example quoted in it.
        if text in reference and len(words) >= 0.6 * len(reference.split()):
            return True
        if difflib.SequenceMatcher(None, text, reference, autojunk=False).ratio() >= 0.8:
            return True
    return False


def _descriptions(tool: Tool, parameter: str) -> list[str]:
    properties = tool.parameters.get("properties")
    found = [tool.description]
    if isinstance(properties, Mapping):
        own = properties.get(parameter)
        if isinstance(own, Mapping) and isinstance(own.get("description"), str):
            found.insert(0, own["description"])
        found.extend(
            str(schema["description"])
            for name, schema in properties.items()
            if name != parameter and isinstance(schema, Mapping) and schema.get("description")
        )
    return found


def blocked_result(tool: Tool, call: ToolCallPart, problems: Sequence[Ungrounded]) -> str:
    """What the model reads instead of the tool's result: which value was not given,
    so that it asks the user rather than guesses again (notes of
    copilot/runtime_notes.py, one a line)."""
    missing = [p for p in problems if p.problem == "not_given"]
    in_text = [p for p in problems if p.problem == "not_given_in_text"]
    copied = [p for p in problems if p.problem == "description"]
    action = notes.action_of(tool.description)
    lines: list[str] = []
    if missing:
        named = ", ".join(f"{p.parameter} {p.value!r}" for p in missing)
        asks = " and ".join(spoken(p.parameter) for p in missing)
        lines.append(notes.BLOCKED_NOT_GIVEN.write(action=action, named=named, asks=asks))
    if in_text:
        named = ", ".join(f"{p.parameter} ({p.value})" for p in in_text)
        lines.append(notes.BLOCKED_IN_TEXT.write(action=action, named=named))
    if copied:
        named = ", ".join(p.parameter for p in copied)
        lines.append(notes.BLOCKED_DESCRIPTION.write(action=action, named=named))
    return "\n".join(lines)


def spoken(parameter: str) -> str:
    """`order_id` -> "order id", `issueKey` -> "issue key" (for a question to a person)."""
    return name_in_words(parameter).lower().strip()
