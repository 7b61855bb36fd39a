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
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from pilothouse.copilot.events import Citation
from pilothouse.copilot.grounding import Retrieval, context_block
from pilothouse.types import Message

_HEADER = re.compile(r"^\[(\d{1,3})\] \(", re.MULTILINE)


def unseen(found: Retrieval, history: Sequence[Message]) -> Retrieval:
    """`found` for a turn after `history`: the passages the history holds keep their
    number there and leave the context, the others are numbered on (see the module
    doc); the context names the ones above. Unchanged when the history holds none."""
    sent = "\n\n".join(m.text for m in history if m.role == "user")
    highest = max((int(n) for n in _HEADER.findall(sent)), default=0)
    if not found.citations or highest == 0 or len(found.texts) != len(found.citations):
        return found
    citations: list[Citation] = []
    new: list[tuple[Citation, str]] = []
    for citation, text in zip(found.citations, found.texts, strict=True):
        number = _number_in(sent, citation, text)
        if number is None:
            highest += 1
            renumbered = replace(citation, number=highest)
            new.append((renumbered, text))
            citations.append(renumbered)
        else:
            citations.append(replace(citation, number=number))
    fresh = {c.number for c, _ in new}
    above = [c for c in citations if c.number not in fresh]  # in retrieval's order
    blocks = [context_block([c for c, _ in new], [t for _, t in new])] if new else []
    if above:
        named = [f"[{c.number}] ({c.where})" for c in above]
        listed = " and ".join(filter(None, ["; ".join(named[:-1]), named[-1]]))
        blocks.append(f"{'Also ' if new else ''}{listed}, given above.")
    return replace(
        found,
        citations=citations,
        context="\n\n".join(blocks),
        texts=tuple(t for _, t in new),
    )


def _number_in(sent: str, citation: Citation, text: str) -> int | None:
    """The number the history gave this passage's block, or None."""
    block = re.compile(
        r"^\[(\d{1,3})\] " + re.escape(f"({citation.where})\n{text.strip()}") + r"(?:\n\n|\Z)",
        re.MULTILINE,
    )
    match = block.search(sent)
    return int(match.group(1)) if match else None
