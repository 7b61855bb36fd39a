"""A stepped answer's fixed JSON given to the model instead of decoded.

The answer step's reply is `{"sources": [1, 3], "answer": "..."}` (step_replies.py's
schema). Constrained by that schema, every token of it is decoded one by one, so the
user's first word waits for about twelve tokens nobody chose: `{"sources": [` before
the model's numbers and `], "answer": "` after them (~1 s on the 1.5B on two cores).
Where the model's adapter continues a final assistant message and takes a llama.cpp
grammar (profile `grammar`: the embedded runtime), the reply is asked for in two
requests, each starting with the fixed text as the assistant's own:

1. `{"sources": [` given, the numbers decoded (`sources_grammar`: the passages'
   numbers, one to three, ", " between), ending at the `]` (a stop string);
2. `{"sources": [1, 3], "answer": "` given (`opening`), the answer decoded
   (`ANSWER_GRAMMAR`: a JSON string's characters, then `"}`).

An answer without passages (after tool results, past the step limit) is
`{"answer": "..."}`: `ANSWER_START` is given and the answer decoded under
`WORDED_ANSWER_GRAMMAR`, whose first character is a letter or a digit. Those steps
describe the reply as `{"answer": "..."}`, and the 0.5B, constrained by the schema
alone, wrote that placeholder as its answer after a lookup in about 1 run in 6
(`...`, or the JSON again inside the string).

The fixed text is read in one batch with the prompt; the second request finds the
first one's prompt in llama.cpp's cache, so it reads only the handful of tokens after
the numbers. The reply kept in the conversation is the whole JSON, which tokenises
as the requests did: the next turn's prompt still matches the cache token for token.
The JSON is written compact (`", "` after the colon and between numbers, nothing
before the closing brace), the way the models write it unprompted most of the time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from pilothouse.copilot import scripts_used

if TYPE_CHECKING:  # only a type here: the run's state imports this module (quoted answers)
    from pilothouse.copilot.run_state import RunState

SOURCES_START = '{"sources": ['
"""The reply's start, before the passage numbers the model chooses."""

_CHAR = r"""char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
"""
"""A JSON string's character, escapes included."""

ANSWER_GRAMMAR = 'root ::= char+ "\\"}"\n' + _CHAR
"""The rest of the reply after `opening(...)`: the answer as a JSON string's
characters (at least one), then the string's and the object's end."""

ANSWER_START = '{"answer": "'
"""The start of an answer without passages, before its first character."""

_FIRST = r"first ::= [0-9A-Za-z\u00C0-\u1FFF\u2070-\U0010FFFF]"

WORDED_ANSWER_GRAMMAR = f'root ::= first char* "\\"}}"\n{_FIRST}\n{_CHAR}'
"""`ANSWER_GRAMMAR` with a word's first character: a letter or a digit of any script,
so no "...", brace, quote, space or dash (nor the general punctuation block: "…",
curly quotes) can start the answer."""

SOURCES_STOP = "]"
"""Where the numbers end; the request stops there (llama.cpp leaves it out)."""


def sources_grammar(passages: Sequence[int]) -> str:
    """The numbers after `SOURCES_START`: one to three (at most as many as there are
    passages) of `passages`, ", " between, then `]`, as the schema allows."""
    numbers = sorted(set(passages))
    if not numbers:
        raise ValueError("a sources grammar needs at least one passage number")
    one = " | ".join(f'"{n}"' for n in numbers)
    more = ""
    for _ in range(min(3, len(numbers)) - 1):
        more = f'(", " number{more})?'
    return f'root ::= number{more} "]" after\nnumber ::= {one}\n{_AFTER}'


_AFTER = 'after ::= [ \\t\\n]* ("," [ \\t\\n"]*)?\n'
"""What may follow the `]` in the token that holds it, as in the whole JSON: the
model's likeliest token there is `],` (one token), and a grammar ending at `]` would
leave it only a lone `]`, which it rarely writes, so it named more passages instead
(the helpdesk eval's citation precision fell from 0.89 to 0.49). The stop string ends
the request at that token whatever follows the `]` in it."""


def read_sources(text: str, passages: Sequence[int]) -> list[int]:
    """The passage numbers of a sources request's reply (`text` after the start, with
    or without the `]`), those that are passages only, in order, each once."""
    allowed, found = set(passages), []
    for match in re.findall(r"\d+", text.split(SOURCES_STOP, 1)[0]):
        number = int(match)
        if number in allowed and number not in found:
            found.append(number)
    return found[:3]


def opening(sources: Sequence[int]) -> str:
    """The reply up to the answer's first character, for these sources."""
    return f'{SOURCES_START}{", ".join(str(n) for n in sources)}], "answer": "'


class Given(NamedTuple):
    """An answer request's given start and the grammar the rest is decoded under."""

    text: str
    grammar: str


def given(sources: Sequence[int], state: RunState) -> Given:
    """What an answer request of `state`'s run is given and decoded under: with
    `sources` (the passages the model chose), their `opening` and `ANSWER_GRAMMAR`;
    without (no passages: after tool results, past the step limit), `ANSWER_START` and
    `WORDED_ANSWER_GRAMMAR` (a word first: no placeholder). Either grammar writes no
    script that nothing in the run is written in (copilot/scripts_used.py)."""
    if sources:
        text, grammar = opening(sources), ANSWER_GRAMMAR
    else:
        text, grammar = ANSWER_START, WORDED_ANSWER_GRAMMAR
    return Given(text, scripts_used.confined(grammar, scripts_used.absent_in_run(state)))
