"""Passages cut to what answers the question, under a token budget.

A small model on a CPU reads about 30 prompt tokens a second, and the retrieved
passages are most of every new prompt. With a budget (the model profile's
`passage_budget`), each passage keeps only its units (sentences, list items, table
rows) most similar to the question, in their original order, so that all passages
together fit the budget. Every passage keeps at least its best unit, under its own
number, so the [n] anchors stay; a table keeps its header row with the rows it keeps.

Similarity by embedding ranks a definition ("The response target is the time until an
analyst starts working on the ticket") above the table row that holds the fact ("P2
High | 30 minutes | ..."), so the question's identifiers rank first: a unit naming one
of the question's key terms (a word with a digit and a letter, P2, F9, T14, HD-1006, or
a number of three digits or more, 4357) comes before any unit naming fewer of them,
then by similarity. Tables are rows of cells joined by "|", with or without the outer
pipes (Markdown's source keeps them; the HTML and DOCX loaders write "a | b").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pilothouse.knowledge.embeddings import Embedder
from pilothouse.knowledge.tokens import TokenCounter

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(*\[A-Z0-9])")
ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s")
"""A list item's bullet or number, and the space after it."""
TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
"""A Markdown table's rule row (below its header)."""
_WORD = re.compile(r"[^\W_]+(?:[-_./][^\W_]+)*")
_KEY_TERM = re.compile(r"(?=.*\d)(?=.*[^\W\d_]).*|\d{3,}")


@dataclass(frozen=True, slots=True)
class Unit:
    """A piece of a passage that is kept or left out as a whole."""

    block: int
    """The paragraph, list or table it belongs to (units of one block stay together)."""
    text: str
    joiner: str
    """What goes before it when the unit before it in its block is kept too."""
    header: bool = False
    """A table's header row: kept whenever a row of its table is."""


def split_units(text: str) -> list[Unit]:
    """A passage's units: sentences of a paragraph (hard-wrapped lines joined), items
    of a list, rows of a table (its rule row dropped)."""
    units: list[Unit] = []
    for block, part in enumerate(re.split(r"\n\s*\n", text.strip())):
        lines = [line for line in part.splitlines() if line.strip()]
        if _is_table(lines):
            rows = [line.strip() for line in lines if not TABLE_RULE.match(line)]
            units += [Unit(block, row, "\n", header=i == 0) for i, row in enumerate(rows)]
        elif lines and ITEM.match(lines[0]):
            items: list[str] = []
            for line in lines:
                if ITEM.match(line) or not items:
                    items.append(line.strip())
                else:  # an item's continuation line
                    items[-1] += " " + line.strip()
            units += [Unit(block, item, "\n") for item in items]
        else:
            prose = " ".join(line.strip() for line in lines)
            units += [Unit(block, s, " ") for s in _SENTENCE_END.split(prose) if s.strip()]
    return units


def _is_table(lines: Sequence[str]) -> bool:
    """Rows of cells: every line starts with a pipe (Markdown), or there are two lines
    or more and every one has a cell separator (the HTML and DOCX loaders' rows)."""
    if not lines:
        return False
    if all(line.lstrip().startswith("|") for line in lines):
        return True
    return len(lines) > 1 and all(" | " in line for line in lines)


def key_terms(text: str) -> set[str]:
    """`text`'s identifier-like words, lower-cased: those with a digit and a letter
    (P2, F9, HD-1006) and numbers of three digits or more (4357)."""
    return {w.lower() for w in _WORD.findall(text) if _KEY_TERM.fullmatch(w)}


def join_units(units: Sequence[Unit]) -> str:
    """Kept units back into text: a block's units with their joiner, blocks apart."""
    out = ""
    previous: int | None = None
    for unit in units:
        if previous is None:
            out = unit.text
        elif unit.block == previous:
            out += unit.joiner + unit.text
        else:
            out += "\n\n" + unit.text
        previous = unit.block
    return out


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = (sum(x * x for x in a) * sum(y * y for y in b)) ** 0.5
    return dot / norm if norm > 0 else 0.0


async def fit_passages(
    question: str,
    passages: Sequence[str],
    budget: int,
    embedder: Embedder,
    counter: TokenCounter,
) -> list[str]:
    """`passages` cut to fit `budget` tokens together (see the module doc); passages
    that already fit are returned as they are."""
    if sum(counter.count(p) for p in passages) <= budget:
        return list(passages)
    units = [split_units(p) for p in passages]
    flat = [(i, j) for i, found in enumerate(units) for j in range(len(found))]
    vectors = await embedder.embed([question, *(units[i][j].text for i, j in flat)])
    score = {key: _cosine(vectors[0], v) for key, v in zip(flat, vectors[1:], strict=True)}
    cost = {(i, j): counter.count(units[i][j].text) for i, j in flat}
    kept: set[tuple[int, int]] = set()
    spent = 0

    def keep(key: tuple[int, int]) -> None:
        nonlocal spent
        i, j = key
        found = units[i]
        header = next(
            (h for h in range(j, -1, -1) if found[h].header and found[h].block == found[j].block),
            None,
        )
        for k in (key, (i, header)) if header is not None else (key,):
            if k not in kept:
                kept.add(k)
                spent += cost[k]

    wanted = key_terms(question)
    named = {key: len(wanted & key_terms(units[key[0]][key[1]].text)) for key in flat}
    ranked = sorted(flat, key=lambda key: (-named[key], -score[key]))
    for i in range(len(passages)):  # the anchors: every passage keeps its best unit
        best = next((key for key in ranked if key[0] == i), None)
        if best is not None:
            keep(best)
    for key in ranked:
        if key not in kept and spent + cost[key] <= budget:
            keep(key)
    return [
        join_units([u for j, u in enumerate(found) if (i, j) in kept]) or passages[i]
        for i, found in enumerate(units)
    ]
