"""The writing systems a conversation uses, and free text kept to them.

The 0.5B wrote a stray "我" (Han) into the English summary of a ticket (issue 20,
eighth round): Qwen's small models were trained on much Chinese, and a token of it
sometimes wins a sampling step in English text. Nothing in an English conversation asks
for Han, so what the model writes in its free text (an answer, a free-text argument)
keeps to the scripts the user's messages, the passages and the tool results hold
(`absent_in_run`: the scripts of `SCRIPTS` with no character there; Latin, digits,
punctuation and symbols are always allowed).

Two places apply it: where the embedded runtime decodes an answer under a grammar
(copilot/answer_opening.py), the grammar's characters leave the absent scripts out
(`confined`), so no such character can be decoded; a free-text argument, decoded under
the tool's JSON schema (the model server's own grammar), has them taken out of the
value when the reply is read (`without_absent_scripts`, copilot/argument_words.py). A
conversation in Chinese holds Han, so nothing of it is taken out there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pilothouse.util.spacing import tidied

# Only a type here: the run's state imports the answer's opening, which imports this.
if TYPE_CHECKING:
    from pilothouse.copilot.run_state import RunState

Range = tuple[int, int]

SCRIPTS: dict[str, tuple[Range, ...]] = {
    "Greek": ((0x0370, 0x03FF), (0x1F00, 0x1FFF)),
    "Cyrillic": ((0x0400, 0x052F), (0x1C80, 0x1C8F), (0x2DE0, 0x2DFF), (0xA640, 0xA69F)),
    "Armenian": ((0x0530, 0x058F),),
    "Hebrew": ((0x0590, 0x05FF),),
    "Arabic": ((0x0600, 0x06FF), (0x0750, 0x077F), (0x08A0, 0x08FF), (0xFB50, 0xFDFF)),
    "Indic": ((0x0900, 0x0DFF),),
    "Thai": ((0x0E00, 0x0E7F),),
    "Lao": ((0x0E80, 0x0EFF),),
    "Tibetan": ((0x0F00, 0x0FFF),),
    "Myanmar": ((0x1000, 0x109F),),
    "Georgian": ((0x10A0, 0x10FF),),
    "Hangul": ((0x1100, 0x11FF), (0x3130, 0x318F), (0xAC00, 0xD7AF)),
    "Ethiopic": ((0x1200, 0x139F),),
    # Han, kana and bopomofo, with the CJK punctuation and full-width forms they use.
    "Han": (
        (0x2E80, 0x2FDF),
        (0x3000, 0x303F),
        (0x3040, 0x30FF),
        (0x3100, 0x312F),
        (0x31A0, 0x31FF),
        (0x3400, 0x4DBF),
        (0x4E00, 0x9FFF),
        (0xF900, 0xFAFF),
        (0xFE30, 0xFE4F),
        (0xFF00, 0xFFEF),
        (0x20000, 0x3134F),
    ),
}
"""Scripts a model may stray into, by their Unicode blocks (a script not listed is
never taken out)."""


def absent(texts: Iterable[str]) -> tuple[Range, ...]:
    """The ranges of the scripts of `SCRIPTS` that no character of `texts` is in."""
    used = {ord(c) for text in texts for c in text if ord(c) >= 0x0370}
    return tuple(
        span
        for spans in SCRIPTS.values()
        if not any(lo <= code <= hi for code in used for lo, hi in spans)
        for span in spans
    )


def absent_in_run(state: RunState) -> tuple[Range, ...]:
    """`absent` for a run: its question, the user's earlier messages, the passages
    and every tool result (the model's own words license nothing)."""
    texts = [state.question, *(c.text for c in state.citations)]
    for message in (*state.evidence, *state.tail):
        if message.role == "user":
            texts.append(message.text)
        texts.extend(result.content for result in message.tool_results)
    return absent(texts)


def without_absent_scripts(value: str, ranges: tuple[Range, ...]) -> str:
    """`value` without the characters in `ranges`, its spacing tidied."""
    if not ranges:
        return value
    kept = "".join(c for c in value if not _within(ord(c), ranges))
    if kept == value:
        return value
    return tidied(kept)


def _within(code: int, ranges: tuple[Range, ...]) -> bool:
    return any(lo <= code <= hi for lo, hi in ranges)


_CHAR_CLASS = '[^"\\\\\\x7F\\x00-\\x1F]'
"""The unconfined JSON string character class of copilot/answer_opening.py's grammars."""
_U_ESCAPE = '"u" [0-9a-fA-F]{4}'
_FIRST = re.compile(r"^first ::= \[(?P<body>[^\]]*)\]$", re.MULTILINE)


def confined(grammar: str, ranges: tuple[Range, ...]) -> str:
    """An answer grammar of copilot/answer_opening.py whose JSON string characters
    (and the answer's first character) are never in `ranges`; a \\u escape only for a
    character below U+0100 (an escape could write any other)."""
    if not ranges:
        return grammar
    excluded = "".join(f"{_escape(lo)}-{_escape(hi)}" for lo, hi in ranges)
    confined_grammar = grammar.replace(_CHAR_CLASS, _CHAR_CLASS[:-1] + excluded + "]")
    confined_grammar = confined_grammar.replace(_U_ESCAPE, '"u" "00" [0-9a-fA-F]{2}')
    first = _FIRST.search(confined_grammar)
    if first is not None:
        allowed = _subtract(_ranges_of(first.group("body")), ranges)
        body = "".join(f"{_escape(lo)}-{_escape(hi)}" for lo, hi in allowed)
        confined_grammar = _FIRST.sub(lambda _: f"first ::= [{body}]", confined_grammar, 1)
    return confined_grammar


def _escape(code: int) -> str:
    return f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"


_ONE = r"(\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8}|[^\\])"
_CLASS_PART = re.compile(_ONE + "(?:-" + _ONE + ")?")


def _ranges_of(body: str) -> list[Range]:
    """A positive GBNF character class's ranges (single characters, \\u and \\U
    escapes, as copilot/answer_opening.py writes them)."""

    def code(part: str) -> int:
        return int(part[2:], 16) if part.startswith("\\") else ord(part)

    return [(code(m.group(1)), code(m.group(2) or m.group(1))) for m in _CLASS_PART.finditer(body)]


def _subtract(allowed: list[Range], taken: tuple[Range, ...]) -> list[Range]:
    left = allowed
    for lo, hi in taken:
        left = [
            part
            for a, b in left
            for part in ((a, min(b, lo - 1)), (max(a, hi + 1), b))
            if part[0] <= part[1]
        ]
    return sorted(left)
