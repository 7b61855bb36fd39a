"""A small model's answer from passages, quoted from them.

On issue 20's follow-up sets the 0.5B mostly failed with the answering passage in its
prompt: it wrote a figure without its meaning ("6" for how fast express delivery is,
"3.08" for when to book the plotter), repeated its previous answer or the question, or
wrote a list of numbers nobody asked for (docs/local-model.md, "Follow-ups (seventh
round)"). Where the model's profile says `quoted_answers` (and the answer is written
after the sources step, copilot/answer_opening.py), the answer is instead the units
(sentences, list items, table rows) of the passages the model named that are nearest
the question, the best three, best first, each with its passage's marker: a unit naming
more of the question's key terms first (passage_budget's rule: P2, HD-1006, 4357), then
by the knowledge base's embedding of the bare question. The model still chooses the
passages (the sources step); the answer is then the one text a grammar could allow, so
the runtime gives it (`reply`) instead of asking the model to decode it token by token
(~60-75 output tokens): shown and cited as a decoded answer, traced as given (a span
`answer_given`), and kept in the conversation as the whole JSON reply. A given reply is
not in the model's KV cache: the next turn reads it with its prompt.

Chosen by the model among all the units, the quote was mostly the passage's first
sentence, the likeliest start whatever the question. Ranked as above, the best unit held
the expected fact in 18 of the 21 knowledge follow-ups of followups-fresh and 14 of the
24 of followups-fresh3 (the question with its earlier ones, as the search uses it: 6 and
9); the best three in 19 and 22. A table row is given with its header's names ("Floor:
2; Location: Beside the IT Bar; ..."), so that it reads alone.

Answers after tool results, and models without the field, are written as before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from pilothouse.copilot import answer_opening
from pilothouse.copilot.events import Citation
from pilothouse.copilot.passage_budget import ITEM, TABLE_RULE, Unit, key_terms, split_units
from pilothouse.knowledge.embeddings import Embedder, cosine
from pilothouse.models.base import Model

QUOTES = 3
"""How many units an answer quotes: one to three short sentences, as the instructions
ask of every answer (see the module doc for why not one)."""
_SHORTEST = 3
"""Units of fewer words (a lone heading, "Status:") are not offered."""
_EMPTY = {"", "-", "–", "—"}
"""Table cells that say nothing."""

Quote = tuple[int, str]
"""A passage's number and one of its units, as an answer may say it."""


async def for_turn(
    question: str, citations: Sequence[Citation], models: Sequence[Model], embedder: Embedder | None
) -> tuple[Quote, ...]:
    """The units of a turn's passages for an answer that quotes them (`ranked`), where
    every model of the chain says `quoted_answers` in its profile; else none."""
    if not citations or embedder is None or not models:
        return ()
    if not all(m.profile.quoted_answers for m in models):
        return ()
    return tuple(await ranked(question, citations, embedder))


async def ranked(question: str, citations: Sequence[Citation], embedder: Embedder) -> list[Quote]:
    """Every unit of the passages (their whole text), nearest `question` first (see the
    module doc); each text once, with the number of the first passage holding it."""
    found: dict[str, int] = {}
    for citation in citations:
        for text in readable_units(citation.text or citation.snippet):
            found.setdefault(text, citation.number)
    if not found:
        return []
    texts = list(found)
    vectors = await embedder.embed([question, *texts])
    wanted = key_terms(question)
    order = sorted(
        range(len(texts)),
        key=lambda i: (-len(wanted & key_terms(texts[i])), -cosine(vectors[0], vectors[i + 1])),
    )
    return [(found[texts[i]], texts[i]) for i in order]


def best(quotes: Sequence[Quote], sources: Sequence[int]) -> str | None:
    """The answer quoting the first `QUOTES` of `quotes` from `sources`, best first, each
    with its marker; None when none is from them."""
    chosen = [f"{text} [{number}]" for number, text in quotes if number in sources][:QUOTES]
    return " ".join(chosen) or None


def readable_units(passage: str) -> list[str]:
    """`passage`'s units as an answer may say them: whitespace made single spaces, a
    list item without its bullet, a table row as "Name: cell; ..." after its header
    (the header row itself is not one); units of fewer than `_SHORTEST` words left out."""
    units = split_units(passage)
    headed = _headed_blocks(passage)
    out: list[str] = []
    header: list[str] = []
    for unit in units:
        if unit.header and unit.block in headed:
            header = _cells(unit.text)
            continue
        if _is_row(unit, units):
            text = _row(unit, header if unit.block in headed else [])
        else:
            text = ITEM.sub("", unit.text)  # the spaces left are made single below
        text = " ".join(text.split())
        if len(text.split()) >= _SHORTEST:
            out.append(text)
    return out


def reply(sources: Sequence[int], answer: str) -> str:
    """The whole reply that gives `answer` for `sources`: the answer step's JSON
    (`answer_opening.opening`), the answer a JSON string, as the model would write it."""
    return answer_opening.opening(sources) + json.dumps(answer, ensure_ascii=False)[1:] + "}"


def _headed_blocks(passage: str) -> set[int]:
    """The blocks (as split_units numbers them) whose first row is a table's header: a
    Markdown table's when its rule row follows it, a loader's table ("a | b" rows, no
    outer pipes) always. A passage cut from the middle of a Markdown table starts with
    a row of data, not its header."""
    headed: set[int] = set()
    for block, part in enumerate(re.split(r"\n\s*\n", passage.strip())):
        lines = [line for line in part.splitlines() if line.strip()]
        if not lines or not lines[0].lstrip().startswith("|"):
            headed.add(block)  # not a Markdown table: a loader's header, if a table
        elif len(lines) > 1 and TABLE_RULE.match(lines[1]):
            headed.add(block)
    return headed


def _is_row(unit: Unit, units: Sequence[Unit]) -> bool:
    return any(u.header and u.block == unit.block for u in units)


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def _row(unit: Unit, header: Sequence[str]) -> str:
    cells = _cells(unit.text)
    if len(header) != len(cells):
        return "; ".join(c for c in cells if c not in _EMPTY)
    return "; ".join(
        f"{name}: {cell}" for name, cell in zip(header, cells, strict=True) if cell not in _EMPTY
    )
