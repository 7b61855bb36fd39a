"""The user's words in an argument the model writes: a free-text value holds no
request to act.

A tool's free-text parameter ("reason: Why the customer is returning it, in their
words") takes what the user said about the thing, and the model writes it from the
user's message. The 1.5B, asked for a return's arguments after "It arrived damaged,
please send it back for me." (the return decided on the order id given before,
`forced: earlier_id`), wrote that whole message as the reason. The request ("please
send it back for me") is the call itself, not its reason: whoever approves the call
and the tool's own records should read "It arrived damaged".

So when the arguments step's reply is read, each string value of a parameter that is
not identifying loses the pieces of the user's message that ask the copilot to act
(copilot/user_intent.py `asks_to_act`: "please <verb>", "can you <verb>", "I want to
<verb>", a sentence that starts with an action verb). A piece is what lies between
commas, semicolons and sentence ends, and a "please" starts one. Only the user's own
request pieces are taken out, found in the value word for word (case and spacing
aside); a value that is nothing but the request, or holds the user's reason in other
words, is left as the model wrote it.

Nor does a free-text value name what nobody gave (`without_ungiven_identifiers`, ninth
round): an identifier in it that the grounded-argument check would not pass
(copilot/grounded_args.py `invented`: the 1.5B wrote "Dell P2725H", a catalogue's desk
monitor, into a ticket's description the user wrote no model number for) is taken out,
with brackets left empty around it; the rest is the model's
text. A value that would be left with no word stays whole, and the check blocks it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from pilothouse.copilot import scripts_used
from pilothouse.copilot.grounded_args import Evidence, evidence_from, invented
from pilothouse.copilot.run_state import RunState
from pilothouse.copilot.unsaid_choices import defaulted
from pilothouse.copilot.user_intent import asks_to_act
from pilothouse.tools.base import Tool
from pilothouse.tools.identifiers import identifying_parameters
from pilothouse.util.spacing import tidied

_PLEASE = re.compile(r"(?<=[^\s,;.!?])\s+(?=(?:please|pls|kindly)\b)", re.IGNORECASE)
_PIECE = re.compile(r"[^,;.!?]+[,;.!?]*\s*")
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def without_the_request(
    arguments: Mapping[str, Any], tool: Tool, message: str, tools: Sequence[Tool]
) -> dict[str, Any]:
    """`arguments` with the user's request pieces of `message` taken out of `tool`'s
    free-text values (see the module doc); `tools`: the copilot's, whose descriptions'
    first words are action verbs too."""
    asked = {_said(p) for p in _pieces(message) if asks_to_act(p.strip(" ,;.!?"), tools)}
    if not asked:
        return dict(arguments)
    identifying = identifying_parameters(tool.parameters)
    left = dict(arguments)
    for name, value in arguments.items():
        if name in identifying or not isinstance(value, str):
            continue
        kept = [p for p in _pieces(value) if _said(p) not in asked]
        rest = "".join(kept).strip().rstrip(",;").strip()
        if kept and len(kept) < len(_pieces(value)) and _WORD.search(rest.lower()):
            left[name] = rest
    return left


def as_given(
    arguments: Mapping[str, Any], tool: Tool, state: RunState, tools: Iterable[Tool]
) -> dict[str, Any]:
    """`arguments` of `tool` kept to what this run was given (`tools`: the copilot's,
    for their bound values): no choice the user did not make (copilot/unsaid_choices.py);
    in free text, no identifier nobody gave (`without_ungiven_identifiers`), no
    character of a script nothing in the run is written in (copilot/scripts_used.py)."""
    bound = [value for each in tools for value in each.bindings.values()]
    evidence = evidence_from(state.question, state.evidence, state.tail, bound)
    identifying = identifying_parameters(tool.parameters)
    said = [state.question, *(m.text for m in state.evidence if m.role == "user")]
    chosen = defaulted(arguments, tool.parameters, said)
    left = without_ungiven_identifiers(chosen, tool, evidence, identifying)
    ranges = scripts_used.absent_in_run(state)
    for name, value in left.items():
        if name not in identifying and isinstance(value, str):
            kept = scripts_used.without_absent_scripts(value, ranges)
            left[name] = kept if kept else value
    return left


def without_ungiven_identifiers(
    arguments: Mapping[str, Any], tool: Tool, evidence: Evidence, identifying: Collection[str]
) -> dict[str, Any]:
    """`arguments` with the identifiers nobody gave taken out of `tool`'s free-text
    values (see the module doc); `identifying`: `tool`'s identifying parameters."""
    left = dict(arguments)
    for name, value in arguments.items():
        if name in identifying or name in tool.bindings or not isinstance(value, str):
            continue
        named = invented(value, evidence)
        if not named:
            continue
        rest = value
        for found in named:
            rest = re.sub(rf"(?<![\w@.]){re.escape(found)}(?![\w@])", " ", rest)
        rest = _EMPTY_BRACKETS.sub(" ", rest)
        rest = tidied(rest)
        if _WORD.search(rest.lower()):
            left[name] = rest
    return left


_EMPTY_BRACKETS = re.compile(r"[(\[]\s*[,;:]?\s*[)\]]")


def _pieces(text: str) -> list[str]:
    """`text` cut after its commas, semicolons and sentence ends, and before a
    "please" that follows a word."""
    return _PIECE.findall(_PLEASE.sub(", ", text.strip()))


def _said(piece: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(piece.lower()))
