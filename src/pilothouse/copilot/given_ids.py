"""A message that gives an identifier: which tool it asks for, and the call's
arguments when the message holds them all (issue 20, fifth round).

When the user's message gives a value of the kind a tool's identifying parameter takes
(copilot/asked_slots.py `values`: its pattern, an email, the prefix of the example it
shows), a lookup or an action on that thing is what the user wants, unless the message
is a question that also asks how things work (copilot/user_intent.py
`asks_how_it_works`: "HD-1004 is a P2. How quickly should a P2 be resolved?"). Then
the decision is not the model's to make: the small models answered "Where are we with
HD-1002?" and "Where is my order SO-1002?" from the passages, with no lookup.

`wanted` names the tools such a message asks for: those whose identifying parameter it
gives a value for; only those its verb names when it names some ("Please start a
return for SO-1002"); only read-only ones when it asks for the thing's state ("Where
is SO-1002 now?" is a lookup, never a return), and so does a message that holds only the
id ("SO-1003?", "Thanks, and SO-1003?": `only_ids`). Tools that change data are among them
whatever the reading (a question-shaped "The T2 from SO-1002 arrived cracked, please
take it back" asks for a return): the id is what asks for them, and the approval they
need still stands.

`choose` picks one of several: the tool whose name and description are nearest in
meaning to the message (the copilot's embedder, the message's identifiers masked), so
that "send back", "take it back" or "cancel ... money back" reach `request_return`
and "chase" or "any news on" reach `order_status`, with no list of synonyms. A wrong
action costs more than a wrong lookup (a return offered for approval against a status
shown), so the choice leans to the lookup: a tool that changes data is chosen over a
read-only one only when it is nearer by `MARGIN` or more; otherwise the lookup is
called (its answer shows the user the thing, and they can ask for the action).
Between tools of the same kind, the nearest. Without an embedder (a copilot without
knowledge) the lookup is chosen when there is one, else the model decides among the
wanted tools only.

Follow-ups (seventh round; both found by reading the 1.5B's failures on
benchmarks/grounded/followups-fresh4): a message that only swaps the id ("What about
HD-1003?", "And SO-1004?", "SO-1004 too?") is the user's latest message that gave an
id, with the new one in its place (`swapped`): after "Could you check ticket HD-1002
for me?" it is the same lookup (the 1.5B asked for "the extension number for
HD-1003"; "what about ..." read as a question about how things work). A request
that gives no id of its own asks for the tools that take the id the user gave
latest (`given_before`): "It arrived damaged, please send it back for me." after
"What's the status of SO-1003?" (the 1.5B said "not covered"). Only an action is then
decided without the model (copilot/turns.py: `choose` must pick a tool that changes
data, offered for approval); a lookup is left to the model ("Could you check it again?"),
and when the model then asks nothing, the tool nearest in meaning is called (`Choice.nearest`:
the action offered for approval, never "not covered").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pilothouse.copilot.asked_slots import values
from pilothouse.copilot.reading_words import LANGUAGES
from pilothouse.copilot.user_intent import Reading, asks_for_state, asks_how_it_works
from pilothouse.knowledge.embeddings import Embedder, normalize
from pilothouse.tools.base import Tool
from pilothouse.tools.identifiers import identifying_parameters, mask_identifiers, name_in_words
from pilothouse.types import Message

MARGIN = 0.05
"""How much nearer in meaning (cosine similarity, the knowledge embedder) a tool that
changes data must be than the nearest read-only one to be chosen over it. On the
earlier suites' requests (benchmarks/grounded/*-heldout, -fresh, -fresh2 and the
follow-ups' turns; MiniLM; a first prototype's masking) a return was nearer to
`request_return` by +0.06 to +0.12, and no lookup that was not a state question by
more than 0.00 (benchmarks/grounded/given_ids_offline.py shows the landed figures)."""


def wanted(
    question: str, reading: Reading, tools: Sequence[Tool], named: set[str]
) -> tuple[Tool, ...]:
    """The tools a message that gives an identifier asks for (see the module doc);
    empty when it gives none, or asks how things work, or its verb names other tools."""
    if reading == "question" and asks_how_it_works(question):
        return ()
    takers = [t for t in tools if t.grounded != "off" and given_for(question, t)]
    if named:
        takers = [t for t in takers if t.name in named]
    if reading != "request" and asks_for_state(question):
        takers = [t for t in takers if t.read_only]
    elif only_ids(question, tools):  # "SO-1003?" alone asks to see it, not to change it
        takers = [t for t in takers if t.read_only] or takers
    return tuple(takers)


def swapped(question: str, earlier: Sequence[Message], tools: Sequence[Tool]) -> str | None:
    """The user's latest message in `earlier` that gave an id, with `question`'s ids in
    its place, when `question` is only those ids ("What about HD-1003?", "And SO-1004
    too?"); None otherwise, or when no earlier message gave one (see the module doc)."""
    new = only_ids(question, tools)
    if not new:
        return None
    for message in _said(earlier):
        old = _ids(message.text, tools)
        if len(old) == 1:
            return message.text.replace(old[0], " and ".join(new))
        if old:
            return None
    return None


def only_ids(question: str, tools: Sequence[Tool]) -> list[str]:
    """The ids `question` gives when it holds nothing else but the thing's own words,
    words of `id_swap` and courtesies ("What about HD-1003?", "Thanks, and SO-1003?");
    empty otherwise."""
    given = _ids(question, tools)
    rest = question.lower()
    for value in given:
        rest = rest.replace(value.lower(), " ")
    own = {w for t in tools for w in re.findall(r"[a-z]+", name_in_words(t.name).lower())}
    for language in LANGUAGES:
        said = " ".join(re.findall(r"[a-z]+", rest))
        for courtesy in sorted(language.courtesies, key=len, reverse=True):
            said = re.sub(rf"\b{re.escape(courtesy)}\b", " ", said)
        if given and set(said.split()) - own <= language.id_swap:
            return given
    return []


def given_before(
    question: str, earlier: Sequence[Message], tools: Sequence[Tool], named: set[str]
) -> tuple[Tool, ...]:
    """For a request that gives no id of its own: the tools that take the id the user
    gave latest in `earlier` (only those its verb names when it names some)."""
    if _ids(question, tools):
        return ()
    for message in _said(earlier):
        if _ids(message.text, tools):
            return wanted(message.text, "request", tools, named)
    return ()


def _said(earlier: Sequence[Message]) -> list[Message]:
    """The user's own messages, newest first."""
    return [m for m in reversed(earlier) if m.role == "user" and not m.tool_results]


def _ids(text: str, tools: Sequence[Tool]) -> list[str]:
    """The values `text` gives for the tools' identifying parameters, in order."""
    found = [
        value
        for tool in tools
        if tool.grounded != "off"
        for name in identifying_parameters(tool.parameters)
        for value in values(text, tool, name)
    ]
    return list(dict.fromkeys(found))


def given_for(question: str, tool: Tool) -> bool:
    """Whether `question` gives a value for one of `tool`'s identifying parameters."""
    return any(values(question, tool, name) for name in identifying_parameters(tool.parameters))


@dataclass(frozen=True, slots=True)
class Choice:
    """The tool chosen (None: the model decides among the wanted ones), and why:
    `only`, `nearest`, `lookup` (the action was not nearer by the margin, or there is
    no embedder), or `model`."""

    tool: Tool | None
    why: str
    similarities: dict[str, float]

    @property
    def nearest(self) -> str | None:
        """The tool nearest in meaning, whatever the margin (the chosen one when no
        embedder compared them)."""
        if self.similarities:
            return max(self.similarities, key=self.similarities.__getitem__)
        return None if self.tool is None else self.tool.name


async def choose(question: str, tools: Sequence[Tool], embedder: Embedder | None) -> Choice:
    """One of the wanted `tools` for `question` (see the module doc)."""
    if len(tools) == 1:
        return Choice(tools[0], "only", {})
    lookups = [t for t in tools if t.read_only]
    if embedder is None:
        if len(lookups) == 1:
            return Choice(lookups[0], "lookup", {})
        return Choice(None, "model", {})
    texts = [_masked(question, tools), *(describe(t) for t in tools)]
    vectors = normalize(await embedder.embed(texts))
    near = {t.name: float(vectors[i + 1] @ vectors[0]) for i, t in enumerate(tools)}
    best = max(tools, key=lambda t: near[t.name])
    if best.read_only or not lookups:
        return Choice(best, "nearest", near)
    lookup = max(lookups, key=lambda t: near[t.name])
    if near[best.name] - near[lookup.name] >= MARGIN:
        return Choice(best, "nearest", near)
    return Choice(lookup, "lookup", near)


def describe(tool: Tool) -> str:
    """What a tool is compared with: its name in words and its description."""
    return f"{name_in_words(tool.name)}: {mask_identifiers(' '.join(tool.description.split()))}"


def _masked(question: str, tools: Sequence[Tool]) -> str:
    """The question with the values it gives written as placeholders (an id's digits
    mean nothing to the embedder; "so-1001" reads like "SO-NNNN")."""
    for tool in tools:
        for name in identifying_parameters(tool.parameters):
            for value in values(question, tool, name):
                question = question.replace(value, mask_identifiers(value.upper()))
    return question


def arguments(question: str, tool: Tool) -> list[dict[str, Any]] | None:
    """The calls' arguments when the message holds all that `tool` requires: one
    identifying parameter required (and nothing else), one call per value it gives
    ("Please check HD-1001 and HD-1003": two); None when the model must write them
    (another required parameter: a return's reason)."""
    required = set(tool.spec().parameters.get("required") or ())
    identifying = identifying_parameters(tool.parameters)
    if len(required) != 1 or not required <= set(identifying):
        return None
    [name] = required
    given = values(question, tool, name)
    return [{name: value} for value in given] or None
