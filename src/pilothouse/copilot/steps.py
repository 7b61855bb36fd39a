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

This module holds the texts; the decision's options are copilot/decision_options.py's,
the replies' schemas and reading copilot/step_replies.py's, and copilot/turns.py runs
the steps.
"""

from __future__ import annotations

from collections.abc import Sequence

from pilothouse.copilot.asked_slots import AskedFor
from pilothouse.copilot.grounded_args import spoken
from pilothouse.tools.base import Tool
from pilothouse.tools.identifiers import mask_identifiers

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
- "Step: answer" replies to the user. With passages: {"sources": [...], "answer": \
"..."}, the numbers of the passages you use, then your answer to the question from them.
- A follow-up ("This follows the earlier question..."): reply to this question, not \
the earlier one, in a full sentence with its figures and their units."""
"""The protocol, once, in the system message (cached): what a step's reply is and how
a follow-up is answered. The turns then carry only what differs per turn (the step's
name, the earlier questions a follow-up follows); said on every turn, these ~50 tokens
were read anew on every follow-up (benchmarks/latency/README.md, "Sixth session")."""

DECIDE_STEP = 'Step: decide. Reply {{"decision": ...}} with one of: {options}.'
ARGUMENTS_STEP = "Step: arguments for {name}. Reply with its arguments as a JSON object."
ANSWER_CITED_STEP = "Step: answer."
"""An answer from passages: its reply is described once, in `RULES`."""
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


def ask_what(slots: Sequence[AskedFor] = ()) -> str:
    """What an ask step asks for: the asked-for slots' parameters ("the ticket id"),
    else "the details you need"."""
    names = list(dict.fromkeys(slot.parameter for slot in slots))
    if not names:
        return "the details you need"
    return " and ".join(f"the {spoken(n)}" for n in names)


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
