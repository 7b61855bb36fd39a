"""A named source that does not hold the answer's figures, replaced by the passage
that does.

A stepped answer names its sources before it writes its text (`{"sources": [2],
"answer": "The cost of a colour page is 8p."}`). On follow-ups both models named a
passage the conversation was given that does not hold the answer's figures while
another passage of the turn does ("8p" cited to the hardware catalogue; "6.02" to a
known issue about floor 3): docs/local-model.md, "Follow-ups (fifth round)". So each
named source is checked: when the answer has figures (words with a digit: "8p",
"6.02", "07:30", "443") and the named passage lacks one of them, while a passage of
the turn holds them all, the best-ranked such passage is cited in its place. The
replacement is the runtime's citation, not the model's (shown as matched, like an
inferred one). Nothing is changed when the answer has no figures, the named passage
holds them, or no passage holds them all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pilothouse.copilot.events import Citation

_FIGURE = re.compile(r"[a-z0-9£$€%]*\d[a-z0-9£$€%]*(?:[.:,/-][a-z0-9£$€%]*\d[a-z0-9£$€%]*)*")


def figures(text: str) -> frozenset[str]:
    """The words of `text` with a digit in them, lower-cased ("8p", "6.02", "07:30")."""
    return frozenset(_FIGURE.findall(text.lower()))


def holds(citation: Citation, wanted: frozenset[str]) -> bool:
    """Whether the passage's text holds every one of `wanted`."""
    return wanted <= figures(citation.text or citation.snippet)


def checked_sources(
    answer: str, named: Sequence[int], citations: Sequence[Citation]
) -> tuple[list[int], set[int]]:
    """`named` with each source that lacks the answer's figures replaced (module doc),
    in order, without repeats; and the numbers that the check put in."""
    wanted = figures(answer)
    by_number = {c.number: c for c in citations}
    if not wanted:
        return list(dict.fromkeys(named)), set()
    holding = [c.number for c in citations if holds(c, wanted)]  # retrieval's order
    if not holding or any(n in holding for n in named):
        return list(dict.fromkeys(named)), set()
    sources: list[int] = []
    put: set[int] = set()
    for number in named:
        citation = by_number.get(number)
        if citation is not None and not holds(citation, wanted):
            number = holding[0]
            put.add(number)
        if number not in sources:
            sources.append(number)
    return sources, put - set(named)
