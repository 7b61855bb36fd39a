"""The words that tell a lookup from a process question, per language, as data.

A question that names the user's own thing ("my ticket", "the order I placed") is a
*lookup* only when it asks for the state of that specific thing ("Is my ticket
resolved?", "Where is my order?", "Any news on the ticket I raised?"); a question
about how things work is answered from the knowledge even when it says "my ticket"
("Who decides what priority my ticket gets?", "How quickly should an analyst contact
me about my P3 ticket?", "What happens to my order if ...?"). copilot/user_intent.py
`asks_for_state` applies these words; the reading is English only today, and another
language is another `ReadingWords` in `LANGUAGES`, not code.

A message asks for a state when it has one of `state_cues` ("status", "any news on",
"where are we with", "do I have"), or, unless it has one of `hypothetical` ("if",
"once": a case, not a thing), when an auxiliary of `state_auxiliaries` is followed by
one of `owners` or `someone` ("is my", "will my", "has anyone", "does my") or by an
identifier ("has HD-1006 ..."), or a `wh_words` word is followed by an owner (or a
`partitive` word and an owner: "which of my tickets") and, within three words, such an
auxiliary ("when my order will arrive", "which of my tickets are still open"). Modal verbs
("can", "should", "would") are not state auxiliaries: "How quickly should an analyst
contact me about my ticket?" asks how it works.
`contractions` spell out what the words are read as ("where's" -> "where is").

A message that gives an identifier asks for a lookup or an action on that thing unless
it also asks how things work (`asks_how_it_works`: "HD-1004 is a P2. How quickly
should a P2 be resolved?", "What warranty comes with the thermostat from SO-1002?").
It does when one of its sentences is a question about a kind of thing, not the thing:
a `general_wh` word followed by a noun rather than an auxiliary, an owner or the
identifier ("what warranty", "how quickly"; not "what is happening with HD-1002"); a
question that starts with an auxiliary whose subject is not the thing ("are returns
free?"; not "is HD-1006 ...", "is it ..."); a modal of `modals` whose subject is not the
copilot nor a wish ("should a P2 ...", "can I ..."; not "can you ...", "would like");
a word of `definitional`
("what does 'processing' mean"); or a `hypothetical` word, unless it follows one of
`whether_verbs` ("can you see if anyone has picked it up" asks whether).

A follow-up whose subject is a thing spoken of before (`things`), its owner's or an
identifier, after an auxiliary or a modal that opens the question or follows its wh
word ("When should it arrive?", "Has it shipped?", "What is its status?", "Will my
order come today?"), asks about that thing (user_intent.py `asks_about_it`): after a
lookup, its result holds the answer. "How long is the warranty on it?" (the warranty's
subject) and "How many days do I have to return it?" (the user's) do not, nor a
`hypothetical` one.

A follow-up that holds only an id, the thing's own words, words of `id_swap` and
`courtesies` ("What about HD-1003?", "Thanks, and SO-1003?") swaps the id of the request
it follows (copilot/given_ids.py).
"""

from __future__ import annotations

from dataclasses import dataclass


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


@dataclass(frozen=True, slots=True)
class ReadingWords:
    """One language's words (see the module doc); lower case, apostrophes as "'"."""

    language: str
    state_cues: tuple[str, ...]
    """Words or phrases that ask for a state by themselves (matched on whole words)."""
    cue_exceptions: tuple[str, ...]
    """Phrases that start like a cue and are not one ("do i have to")."""
    hypothetical: frozenset[str]
    state_auxiliaries: frozenset[str]
    owners: frozenset[str]
    someone: frozenset[str]
    wh_words: frozenset[str]
    contractions: dict[str, str]
    general_wh: frozenset[str] = frozenset()
    modals: frozenset[str] = frozenset()
    asking_to_act: frozenset[str] = frozenset()
    """Words after a modal that make it a request ("can you", "would like")."""
    the_thing: frozenset[str] = frozenset()
    """Words that stand for the thing the message is about ("is it ...")."""
    definitional: frozenset[str] = frozenset()
    whether_verbs: frozenset[str] = frozenset()
    """Verbs after which "if" asks whether ("see if", "check if")."""
    id_swap: frozenset[str] = frozenset()
    """The words a follow-up that only swaps the id may hold besides the id and the
    thing's own words ("What about HD-1003?", "And SO-1004 too?": copilot/given_ids.py
    `swapped`)."""
    partitive: frozenset[str] = frozenset()
    """Words between a `wh_words` word and an owner ("which of my tickets ...")."""
    courtesies: tuple[str, ...] = ()
    """Thanks and acknowledgements that ask for nothing ("Thanks, and SO-1003?"): left
    out when a message is read for whether it holds only an id (matched on whole
    words, longest first)."""
    things: frozenset[str] = frozenset()
    """Words that stand for a thing spoken of before, not a person ("it", "its",
    "that"): the subject of "When should it arrive?" after a lookup."""


ENGLISH = ReadingWords(
    language="en",
    state_cues=(
        "status",
        "update",
        "updates",
        "news",
        "progress",
        "any word on",
        "happening with",
        "going on with",
        "where are we with",
        "where are we on",
        "where are we at with",
        "where are things with",
        "where are things on",
        "where do we stand",
        "where do things stand",
        "where does it stand",
        "do i have",
        "have i got",
        "did i",
    ),
    cue_exceptions=("do i have to", "have i got to"),
    hypothetical=_words("if once whenever unless usually normally generally typically"),
    state_auxiliaries=_words("is are was were has have had will did does do"),
    owners=_words("my our"),
    someone=_words("anyone anybody someone somebody"),
    wh_words=_words("where when what who which how why whether"),
    contractions={
        "what's": "what is",
        "where's": "where is",
        "when's": "when is",
        "who's": "who is",
        "how's": "how is",
        "isn't": "is",
        "aren't": "are",
        "wasn't": "was",
        "hasn't": "has",
        "haven't": "have",
        "hadn't": "had",
        "won't": "will",
        "didn't": "did",
        "doesn't": "does",
        "don't": "do",
    },
    general_wh=_words("what which how who why"),
    modals=_words("should must ought would could can may might need"),
    asking_to_act=_words("you u like love please"),
    the_thing=_words("it this that they these those he she i we you u"),
    definitional=_words("mean means meaning meant stand stands"),
    whether_verbs=_words("see check find know ask wonder tell confirm"),
    id_swap=_words(
        "what how about and also too as well then same for with the one please pls ok okay so now"
    ),
    partitive=_words("of"),
    courtesies=(
        "thank you very much",
        "thank you so much",
        "thanks very much",
        "thanks so much",
        "thanks a lot",
        "many thanks",
        "thank you",
        "thanks",
        "thx",
        "ta",
        "cheers",
        "great",
        "perfect",
        "lovely",
        "brilliant",
        "excellent",
        "nice",
        "cool",
        "good",
        "fine",
        "got it",
        "understood",
        "noted",
        "alright",
        "all right",
        "right",
    ),
    things=_words("it its this that they them these those"),
)

LANGUAGES: tuple[ReadingWords, ...] = (ENGLISH,)
"""Every language the reading knows; a message is read with each."""
