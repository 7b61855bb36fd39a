"""A small model's answer from passages, quoted from them.

On issue 20's follow-up sets the 0.5B mostly failed with the answering passage in its
prompt: it wrote a figure without its meaning ("6" for how fast express delivery is,
"3.08" for when to book the plotter), repeated its previous answer or the question, or
wrote a list of numbers nobody asked for (docs/local-model.md, "Follow-ups (seventh
round)"). Where the model's profile says `quoted_answers` (and the answer is written
after the sources step, copilot/answer_opening.py), the answer is instead the unit
(sentence, list item, table row: copilot/quote_units.py says how each reads) of the
passages the model named that is nearest the question, with its passage's marker, and
after it at most two more only as near (`best`): a unit naming more of the question's
key terms and numbers first (passage_budget's rule: P2, HD-1006, 4357; and "floor 3"),
then by the knowledge base's embedding of the question, half-weighted with the question
and its earlier ones. A unit the previous answer quoted never follows the first. The
model still chooses the passages (the sources step); the answer is then the one text a
grammar could allow, so the runtime gives it (`reply`) instead of asking the model to
decode it token by token (~60-75 output tokens): shown and cited as a decoded answer,
traced as given (a span `answer_given`), and kept in the conversation as the whole JSON
reply. A given reply is not in the model's KV cache: the next turn reads it with its
prompt.

Chosen by the model among all the units, the quote was mostly the passage's first
sentence, the likeliest start whatever the question. Ranked as above, the best unit held
the expected fact in 18 of the 21 knowledge follow-ups of followups-fresh and 14 of the
24 of followups-fresh3 (the question with its earlier ones, as the search uses it: 6 and
9); the best three in 19 and 22 (eighth round). With numbers, the earlier questions and
one unit unless others are as near (ninth round), over the five working sets' 111: the
fact in the best unit 81 -> 89, in the answer 99 -> 97, half the words
(benchmarks/grounded/quote_offline.py).

Answers after tool results, and models without the field, are written as before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import NamedTuple

from pilothouse.copilot import answer_opening
from pilothouse.copilot.events import Citation
from pilothouse.copilot.passage_budget import key_terms
from pilothouse.copilot.quote_units import readable_units, table_headers
from pilothouse.knowledge.embeddings import Embedder, cosine
from pilothouse.models.base import Model

QUOTES = 3
"""The most units an answer quotes: one to three short sentences, as the instructions
ask of every answer (see the module doc for why not one)."""
MARGIN = 0.1
"""A unit after the best one is quoted only when it is as near the question within
this much cosine (and names as many of its key terms): where one unit clearly answers,
the answer is that unit alone (measured in docs/local-model.md, ninth round)."""
CONTEXT_WEIGHT = 0.5
"""How much the earlier questions count in a unit's nearness (see `ranked`)."""


_NUMBER = re.compile(r"(?<![\w.,])\d+(?![\w]|[.,]\d)")


class Quote(NamedTuple):
    """A passage's number and one of its units, as an answer may say it."""

    number: int
    text: str
    terms: int = 0
    """How many of the question's key terms the unit names."""
    near: float = 0.0
    """The unit's cosine to the question."""
    said: bool = False
    """The unit was quoted in the previous answer."""


async def for_turn(
    question: str,
    citations: Sequence[Citation],
    models: Sequence[Model],
    embedder: Embedder | None,
    *,
    earlier: Sequence[str] = (),
    previous: str = "",
) -> tuple[Quote, ...]:
    """The units of a turn's passages for an answer that quotes them (`ranked`), where
    every model of the chain says `quoted_answers` in its profile; else none."""
    if not citations or embedder is None or not models:
        return ()
    if not all(m.profile.quoted_answers for m in models):
        return ()
    return tuple(await ranked(question, citations, embedder, earlier=earlier, previous=previous))


async def ranked(
    question: str,
    citations: Sequence[Citation],
    embedder: Embedder,
    *,
    earlier: Sequence[str] = (),
    previous: str = "",
) -> list[Quote]:
    """Every unit of the passages (their whole text), nearest `question` first (see the
    module doc); each text once, with the number of the first passage holding it. A
    unit the `previous` answer quoted comes after the others: a follow-up on the same
    passage gets the next-best unit first, not the previous answer again."""
    found: dict[str, int] = {}
    places: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for citation in citations:
        places.setdefault((citation.source, citation.headings), []).append(
            citation.text or citation.snippet
        )
    for citation in citations:
        headers = table_headers(places[(citation.source, citation.headings)])
        for text in readable_units(citation.text or citation.snippet, headers):
            found.setdefault(text, citation.number)
    if not found:
        return []
    texts = list(found)
    context = "\n".join([*earlier, question]) if earlier and CONTEXT_WEIGHT else None
    vectors = await embedder.embed([question, *([context] if context else []), *texts])
    units = vectors[2:] if context else vectors[1:]
    wanted = _terms(question)
    said = _letters(previous)
    quotes = []
    for text, vector in zip(texts, units, strict=True):
        near = cosine(vectors[0], vector)
        if context:
            near = (near + CONTEXT_WEIGHT * cosine(vectors[1], vector)) / (1 + CONTEXT_WEIGHT)
        repeated = bool(said) and _letters(text) in said
        quotes.append(Quote(found[text], text, len(wanted & _terms(text)), near, repeated))
    return sorted(quotes, key=lambda q: (-q.terms, -q.near))


def best(quotes: Sequence[Quote], sources: Sequence[int]) -> str | None:
    """The answer quoting the best of `quotes` from `sources`, and after it those
    (up to `QUOTES` in all) as near the question within `MARGIN`, naming as many key
    terms, not quoted in the previous answer; each with its marker. None when none is
    from them."""
    named = [q for q in quotes if q.number in sources]
    if not named:
        return None
    first = named[0]
    chosen = [first] + [
        q
        for q in named[1:]
        if not q.said and q.terms >= first.terms and q.near >= first.near - MARGIN
    ]
    return " ".join(f"{q.text} [{q.number}]" for q in chosen[:QUOTES])


def reply(sources: Sequence[int], answer: str) -> str:
    """The whole reply that gives `answer` for `sources`: the answer step's JSON
    (`answer_opening.opening`), the answer a JSON string, as the model would write it."""
    return answer_opening.opening(sources) + json.dumps(answer, ensure_ascii=False)[1:] + "}"


def _terms(text: str) -> set[str]:
    """`text`'s key terms (passage_budget's) and its numbers: "And on floor 3?" names
    the row of floor 3."""
    return key_terms(text) | set(_NUMBER.findall(text))


def _letters(text: str) -> str:
    """`text`'s letters and digits, lower-cased: a unit is found in an answer kept as
    JSON (escaped) or cut differently."""
    return re.sub(r"[^0-9a-z]+", "", text.lower())
