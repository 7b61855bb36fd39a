"""Passages a conversation has already sent the model: a follow-up is sent only the
passages its conversation's history does not hold yet.

The history is rebuilt from the turns as they were sent (copilot/memory.py), so a
passage an earlier turn was given is still in the prompt, above, under its number.
Sending it again would make the model read it twice and the prompt stop matching the
cached one sooner; instead it keeps that number, and the passages new to the
conversation are numbered after the highest one the history holds (a [n] then means
one passage wherever it is). A passage counts as sent when the history holds its
block exactly (`[n] (where)` and the same text), as `grounding.context_block` wrote it.
The passages given above are named by number and place, in retrieval's order (best
first): "[1] (printing.md, Printing > Costs), given above." On numbers alone the 1.5B
answered follow-ups right and cited the wrong one of them (docs/local-model.md,
"Follow-ups"); a place costs a few tokens, and the passages' text stays above, cached.

Under a passage budget (passage_budget.py) a passage is cut to what answers each
question, so a follow-up's cut of a passage differs from the one above: the history's
block is then that passage's when it is at the same place and each of its units is a
unit of the whole passage. Only the units the history does not hold yet are sent,
under the number it had (a table's header with its rows); none, and it is given
above. Sent whole again, such passages were most of what a 1.5B follow-up read anew
(benchmarks/latency/README.md, "Follow-ups under the passage budget").

A passage given above that scores under `WEAKER` of the best passage given above is
sent nothing anew: such a rest cost a follow-up tokens and, printed next to the
question, was answered from instead of the passage above that answered it (issue 20's
sixth round, hv-reset-three-turns).

A new passage that ranks below every passage given above (whole or in part), at under
`WEAKER` of the best of their scores, is left out: the conversation already holds
better passages, and a weak one printed next to the question is what both models
answered from instead ("Will that wipe my heating schedules?" answered from the
batteries passage after the factory reset; "And if I am not doing anything for a
while?" from the troubleshooting table, in issue 20's fourth round's runs).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from pilothouse.copilot.events import Citation
from pilothouse.copilot.grounding import Retrieval, context_block
from pilothouse.copilot.passage_budget import Unit, join_units, split_units
from pilothouse.types import Message

_HEADER = re.compile(r"^\[(\d{1,3})\] \(", re.MULTILINE)
WEAKER = 0.75
"""A new passage under this share of the best given-above passage's score, and ranked
below all of them, is not sent (module doc)."""


def unseen(found: Retrieval, history: Sequence[Message], *, grouped: bool = False) -> Retrieval:
    """`found` for a turn after `history`: the passages the history holds keep their
    number there and leave the context, the others are numbered on (see the module
    doc); the context names the ones above, `grouped`: those at one place together
    ("[1], [2] and [3] (printing.md, Printing > Printers), given above": where the rest
    of a turn's passages is read ahead, copilot/passages_ahead.py, more of them are
    above whole, and the helpdesk's printer table is three at one place). Unchanged
    when the history holds none."""
    sent = [m.text for m in history if m.role == "user"]
    highest = max((int(n) for text in sent for n in _HEADER.findall(text)), default=0)
    if not found.citations or highest == 0 or len(found.texts) != len(found.citations):
        return found
    placed: list[tuple[Citation, str, int | None, str | None]] = []
    for citation, text in zip(found.citations, found.texts, strict=True):
        number = _number_in(sent, citation, text)
        rest: str | None = None
        if number is None:
            number, rest = _part_in(sent, citation, text)
        placed.append((citation, text, number, rest))
    placed = _without_weak_rests(placed)
    citations: list[Citation] = []
    new: list[tuple[Citation, str]] = []
    for citation, text, number, rest in _without_weak(placed):
        if number is None:
            highest += 1
            renumbered = replace(citation, number=highest)
            new.append((renumbered, text))
            citations.append(renumbered)
        else:
            citations.append(replace(citation, number=number))
            if rest:
                new.append((citations[-1], rest))
    fresh = {c.number for c, _ in new}
    above = [c for c in citations if c.number not in fresh]  # in retrieval's order
    blocks = [context_block([c for c, _ in new], [t for _, t in new])] if new else []
    if above:
        places = _by_place(above) if grouped else [(c.where, [c.number]) for c in above]
        named = [f"{_listed([f'[{n}]' for n in ns], ', ')} ({where})" for where, ns in places]
        listed = _listed(named, "; ")
        blocks.append(f"{'Also ' if new else ''}{listed}, given above.")
    return replace(
        found,
        citations=citations,
        context="\n\n".join(blocks),
        texts=tuple(t for _, t in new),
    )


def _by_place(citations: Sequence[Citation]) -> list[tuple[str, list[int]]]:
    """The citations' numbers by place, places in the order they first come."""
    places: dict[str, list[int]] = {}
    for citation in citations:
        places.setdefault(citation.where, []).append(citation.number)
    return list(places.items())


def _listed(items: Sequence[str], separator: str) -> str:
    """`items` as a list in words: "a", "a and b", "a; b and c"."""
    return " and ".join(filter(None, [separator.join(items[:-1]), items[-1]]))


def _without_weak_rests(
    placed: list[tuple[Citation, str, int | None, str | None]],
) -> list[tuple[Citation, str, int | None, str | None]]:
    """`placed` with no rest for a passage given above that scores under `WEAKER` of the
    best passage given above (it is named as given above)."""
    scores = [citation.score for citation, _, number, _ in placed if number is not None]
    if not scores:
        return placed
    floor = WEAKER * max(scores)
    return [
        (citation, text, number, "" if rest and citation.score < floor else rest)
        for citation, text, number, rest in placed
    ]


def _without_weak(
    placed: list[tuple[Citation, str, int | None, str | None]],
) -> list[tuple[Citation, str, int | None, str | None]]:
    """`placed` (each passage with the number the history gave it, or None: new) without
    the new passages ranked below every given-above one and scoring under `WEAKER` of
    the best of those."""
    above = [i for i, (_, _, number, _) in enumerate(placed) if number is not None]
    if not above:
        return placed
    best = max(placed[i][0].score for i in above)
    return [
        entry
        for i, entry in enumerate(placed)
        if not (entry[2] is None and i > above[-1] and entry[0].score < WEAKER * best)
    ]


def _number_in(sent: Sequence[str], citation: Citation, text: str) -> int | None:
    """The number the history (its user messages' texts) gave this passage's block, or
    None."""
    block = re.compile(
        r"^\[(\d{1,3})\] " + re.escape(f"({citation.where})\n{text.strip()}") + r"(?:\n\n|\Z)",
        re.MULTILINE,
    )
    match = next(filter(None, (block.search(message) for message in sent)), None)
    return int(match.group(1)) if match else None


def _blocks_at(sent: str, where: str) -> list[tuple[int, str]]:
    """A message's blocks at `where`: (number, text) each."""
    block = re.compile(
        r"^\[(\d{1,3})\] " + re.escape(f"({where})") + r"\n(.*?)(?=\n\n\[\d{1,3}\] \(|\n\n"
        r"(?:Also \[|Answer from |If the question |Question: )|\Z)",
        re.MULTILINE | re.DOTALL,
    )
    return [(int(m.group(1)), m.group(2)) for m in block.finditer(sent)]


def _part_in(sent: Sequence[str], citation: Citation, text: str) -> tuple[int | None, str | None]:
    """For a passage the history holds cut differently (see the module doc): the number
    it had there and what of `text` it does not hold yet ("" for nothing); else None."""
    number, held = _parts_at(sent, citation)
    if number is None:
        return None, None
    return number, join_units(_rest(_units_of(text, citation.text), held))


def held_units(sent: Sequence[str], citation: Citation) -> set[str]:
    """The units of `citation`'s passage that the history (its user messages' texts)
    holds, in blocks at its place (copilot/passages_ahead.py reads the rest ahead)."""
    return _parts_at(sent, citation)[1]


def _parts_at(sent: Sequence[str], citation: Citation) -> tuple[int | None, set[str]]:
    """The number of the first block at `citation`'s place that is a part of its
    passage, and the units all such blocks hold (None and none: no such block)."""
    whole = {u.text for u in split_units(citation.text)}
    number: int | None = None
    held: set[str] = set()
    if not whole:
        return None, held
    for message in sent:
        for n, block in _blocks_at(message, citation.where):
            units = {u.text for u in _units_of(block, citation.text)}
            if units and units <= whole:
                number = n if number is None else number
                held |= units
    return number, held


def _units_of(cut: str, whole: str) -> list[Unit]:
    """The units of `cut`, a part of the passage `whole` (a cut of it, or it whole): as
    `split_units` reads it, or, where that reads units the passage does not have, the
    passage's units it is made of. Read again, a cut is not always the units it was made
    of: a PDF's section number is a sentence of its paragraph ("... rights. 7. Lost or
    stolen devices ..."), and a cut that begins with it reads as one numbered list item,
    which no block above holds, so the whole of it was sent again."""
    units = split_units(cut)
    passage = split_units(whole)
    if {u.text for u in units} <= {u.text for u in passage}:
        return units
    made = _made_of(cut, passage)
    return units if made is None else made


def _made_of(cut: str, passage: Sequence[Unit]) -> list[Unit] | None:
    """The units of `passage`, in order, that `cut` is made of (joined as `join_units`
    joins them; whitespace compared loosely), or None when it is not made of them."""
    text = " ".join(cut.split())
    found: list[Unit] = []
    at = 0
    for unit in passage:
        piece = " ".join(unit.text.split())
        end = at + len(piece)
        if piece and text.startswith(piece, at) and (end == len(text) or text[end] == " "):
            found.append(unit)
            at = end + 1
    return found if found and at >= len(text) else None


def _rest(units: list[Unit], held: set[str]) -> list[Unit]:
    """`units` less those `held`, a table's header kept with the rows sent."""
    rest = [u for u in units if u.text not in held or u.header]
    sent_rows = {u.block for u in rest if not u.header}
    return [u for u in rest if not u.header or u.block in sent_rows]
