"""What the user's newest message asks for, read before the decision step: whether a
tool may be offered at all.

The grounded-argument check keeps a small model from calling a tool with an id nobody
gave, but a tool without an identifying parameter passes it whatever the question: the
0.5B chose `create_ticket` or `list_my_tickets` on 6 of 7 helpdesk handbook
questions. So the stepped turn reads the message first (`read`):

- `request`: it asks the copilot to do something: a request addressed to it ("can
  you", "could you", "would you", "please"), a wish ("I want", "I'd like", "I need
  you to"), a sentence that starts with an action verb ("Open a ticket", "List my
  tickets", "Chase HD-1002"; the first word of each tool's description counts too;
  "can you" with a verb outside the list, "Can you print double-sided?", is often
  the generic "you" of a question, so the list is kept; "please" before one anywhere:
  "It arrived damaged, please send it back"), a yes to a
  question the copilot asked ("Yes please", "Go ahead"), or a reply to such a
  question that goes on with an earlier request ("SO-1003, it is the wrong colour"
  after "I want to return my thermostat" and "What is your order number?");
- `question`: any other English message (a question, or a statement of a problem);
- `unknown`: no common English word at all (another language, an id alone with no
  request before it): the reading cannot tell and offers what it did before.

"Can you tell me how ...", "could you explain what ..." are questions: a request to
*say* something is answered from the knowledge. A wish in question form ("Do I need
to raise a ticket?", "Should I open one?") is a question too.

What this allows (`allows`, applied by copilot/decision_options.py `options`):
- a tool that changes data (not read-only): only for a request (or `unknown`);
- a read-only tool whose identifying parameters the user gave values for (an id in
  the message): always, the id is what asks for it;
- a read-only tool without identifying parameters: for a request; for a question
  that asks for the state of the user's own things that its name names ("Which
  tickets do I have open?", "Is my ticket resolved?" for `list_my_tickets`; not "Can I
  raise a ticket by email?", nor "Who decides what priority my ticket gets?", a
  question about the process: `asks_for_state`, copilot/reading_words.py); and,
  knowledge first, for a question that shares a word with its name or description
  when strict grounding found no passage above its floor ("Is laptop-7 registered?"
  for a `lookup` in the asset register).
A tool with `grounded: off` is offered as before.

A request whose verb names tools offers only those (`named_tools`): the first word of
a tool's description or a word of its name ("Please start a return for SO-1002"
offers `request_return`, whose description starts "Start a return", not
`order_status`; the 0.5B chose the lookup). A verb that names no tool ("Can you check
HD-1002?") leaves the choice to the model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from pilothouse.copilot.reading_words import LANGUAGES, ReadingWords
from pilothouse.tools.base import Tool
from pilothouse.tools.identifiers import (
    identifying_parameters,
    looks_like_a_quantity,
    name_in_words,
)
from pilothouse.types import Message

Reading = Literal["request", "question", "unknown"]


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ACTION_VERBS = _wordset(
    """open raise create file log submit start cancel close reopen escalate update change
    edit delete remove add book reserve order return refund send resend reset unlock
    check look list show find track get give fetch make schedule assign renew register
    request report lookup"""
) | _wordset(
    # Verbs that pursue something already under way ("Can you chase my ticket?",
    # "Please follow up on SO-1003"): an action on the user's thing, not a question.
    """chase follow nudge hurry expedite pursue investigate"""
)
_FILLERS = r"(?:(?:yes|yeah|ok|okay|so|and|also|then|now|just|please|pls|kindly|sure)[\s,!]+)*"
# Where a verb asks the copilot to act: a sentence's start, "can you ...", "I'd like
# you to ...", "I want to ..."; {verb} is filled in per copilot.
_ACT = (
    r"(?:^|[.!?;:\n]\s*)" + _FILLERS + r"(?P<start>{verb})\b"
    r"|\b(?:can|could|would|will)\s+(?:you|u)\s+(?:please\s+|kindly\s+|just\s+)?(?P<you>{verb})\b"
    r"|\bi(?:\s+want|\s+need|\s+would\s+like|'d\s+like)\s+(?:you\s+)?to\s+(?P<wish>{verb})\b"
    # "It arrived damaged, please send it back": "please" and a verb mid-sentence.
    r"|\b(?:please|pls|kindly)\s+(?:just\s+)?(?P<please>{verb})\b"
    r"|\bi(?:\s+want|\s+need|\s+would\s+like|'d\s+like)\s+(?:a|an|my|the|some)\s"
)
# "Do I need to raise a ticket?", "Should I want to ...": a wish in question form.
_QUESTION_FORM = re.compile(
    r"\b(?:do|does|did|should|shall|must|may|might|can|could|would|will)\s+(?:i|we)\s+"
    r"(?:really\s+)?(?:want|need|like)\b",
    re.IGNORECASE,
)
_YES = re.compile(
    r"^\s*(?:yes|yeah|yep|yup|sure|ok|okay|go\s+ahead|do\s+it|please\s+do)\b", re.IGNORECASE
)
_ENGLISH = _wordset(
    """the a an is are was be do does did can could would will should my i i'm i'd me
    you your to of for in on at it it's and or not no yes what how when where who which
    why this that there have has with from please"""
)
_INTERROGATIVE = _wordset(
    "what how when where who whom which why is are was were do does did can could "
    "should would will may might shall am"
)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower().replace("\u2019", "'"))


def action_verbs(tools: Sequence[Tool]) -> frozenset[str]:
    """The verbs that ask for an action: the usual ones and the first word of each
    tool's description ("Open a new helpdesk ticket")."""
    firsts = {w[0] for w in (_words(t.description) for t in tools) if w}
    return _ACTION_VERBS | firsts


def _requested(text: str, verbs: frozenset[str]) -> list[str] | None:
    """The action verbs `text` asks the copilot to act with ([] for a wish without
    one: "I want a refund"), or None when it asks for no action."""
    alternatives = "|".join(sorted(map(re.escape, verbs)))
    pattern = re.compile(_ACT.replace("{verb}", alternatives), re.IGNORECASE)
    found: list[str] | None = None
    for match in pattern.finditer(text.replace("\u2019", "'")):
        if match.group("start") or not _QUESTION_FORM.search(text):
            verb = (
                match.group("start")
                or match.group("you")
                or match.group("wish")
                or match.group("please")
            )
            found = (found or []) + ([verb.lower()] if verb else [])
    return found


def _asks_to_act(text: str, verbs: frozenset[str]) -> bool:
    return _requested(text, verbs) is not None


def asks_to_act(text: str, tools: Sequence[Tool]) -> bool:
    """Whether `text` asks the copilot to act (a request, the first case of `read`),
    with the usual action verbs and the first word of each of `tools`' descriptions."""
    return _asks_to_act(text, action_verbs(tools))


def named_tools(question: str, tools: Sequence[Tool]) -> set[str]:
    """The tools a request names by its verb: the first word of a tool's description
    ("Start a return for an order": "Please start a return for SO-1002") or a word of
    its name ("I want to return order SO-1001": `request_return`). Empty when its
    verbs name none ("Can you check ticket HD-1002?": the model chooses)."""
    verbs = set(_requested(question, action_verbs(tools)) or ())
    named: set[str] = set()
    for tool in tools:
        words = _words(tool.description)
        own = set(_words(_spaced(tool.name))) | set(words[:1])
        if verbs & own:
            named.add(tool.name)
    return named


def _is_question(text: str) -> bool:
    words = _words(text)
    return "?" in text or bool(words and words[0] in _INTERROGATIVE)


def read(question: str, earlier: Sequence[Message], tools: Sequence[Tool]) -> Reading:
    """How the newest message reads (see the module doc); `earlier`: the conversation
    before it."""
    verbs = action_verbs(tools)
    if _asks_to_act(question, verbs):
        return "request"
    previous = _last(earlier, "assistant")
    if previous is not None and "?" in previous.text:
        if _YES.match(question):
            return "request"
        before = _last(earlier, "user")
        if before is not None and not _is_question(question) and _asks_to_act(before.text, verbs):
            return "request"
    if not set(_words(question)) & _ENGLISH:
        return "unknown"
    return "question"


def _last(messages: Sequence[Message], role: str) -> Message | None:
    for message in reversed(messages):
        if message.role == role and message.text.strip():
            return message
    return None


def allows(
    tool: Tool, reading: Reading, question: str, *, has_identifier: bool, knowledge_found: bool
) -> bool:
    """Whether the decision step may offer `tool` for a message read as `reading`
    (see the module doc); `knowledge_found`: strict grounding kept passages above its
    relevance floor."""
    if tool.grounded == "off" or reading != "question":
        return True
    if not tool.read_only:
        return False
    if identifying_parameters(tool.parameters):
        return has_identifier
    if about_their_own(question, tool) and asks_for_state(question):
        return True
    return not knowledge_found and bool(_tool_words(tool) & _stems(question))


def about_their_own(question: str, tool: Tool, *, one: bool = False) -> bool:
    """Whether the question is about the user's own things that `tool`'s name names:
    "my tickets", "the tickets I have", "which ticket did I raise", "do I have any open
    tickets"; with `one`, about
    one of them ("my ticket", not "my tickets": one thing is looked up by its id)."""
    things = _name_words(tool.name)
    said = _words(question)
    words = [_stem(w) for w in said]
    for i, word in enumerate(words):
        if word not in things or (one and said[i] != word):
            continue
        before, after = words[max(0, i - 3) : i], words[i + 1 : i + 4]
        if "my" in before or "our" in before or "i" in after or "we" in after:
            return True
        # "Do I have any open tickets?": the user has them, named before the things.
        if not one and _HAS_THEM.search(" ".join(said[max(0, i - 5) : i])):
            return True
    return False


_HAS_THEM = re.compile(r"\b(?:do|did) (?:i|we) (?:still )?have\b|\b(?:i|we) (?:have|had|own)\b")


def asks_for_state(question: str) -> bool:
    """Whether the question asks for the state of a specific thing ("Is my ticket
    resolved?", "Where is my order?") rather than how things work ("Who decides what
    priority my ticket gets?"): copilot/reading_words.py, in every language it knows."""
    return any(_asks_for_state(question, words) for words in LANGUAGES)


_IDENTIFIER = re.compile(
    r"\b(?P<prefix>[A-Za-z]{0,6})(?P<gap>[-_ #]?)(?P<number>\d{3,})\b|\S+@\S+\.\w+"
)
_AN_ID = "anid"
"""What an identifier reads as: a specific thing, like an owner's ("has HD-1006 ...")."""


def _marked(question: str) -> str:
    """`question` with each identifier written as `_AN_ID` ("SO-1001", "so 1001",
    "order 1001"); a common word before a bare number stays ("Is 3031 here yet?"
    reads "is anid here yet", not "anid here yet"). A number that is a quantity, a
    price or a model number ("I need 120 pounds", "the 2400 model": tools/identifiers.py
    `looks_like_a_quantity`) is no identifier and stays as it is; a number written
    onto its letters ("SO1001", "SO-1001") always is one."""

    def mark(match: re.Match[str]) -> str:
        number = match.start("number")
        if number < 0:
            return f" {_AN_ID} "  # an email
        spaced = match.group("gap") == " " or number == match.start()
        if spaced and looks_like_a_quantity(question, number, match.end("number")):
            return match.group(0)
        word = match.group("prefix")
        kept = word if spaced and word.lower() in _ENGLISH else ""
        return f" {kept} {_AN_ID} "

    return _IDENTIFIER.sub(mark, question)


def _asks_for_state(question: str, language: ReadingWords) -> bool:
    marked = _marked(question)
    words = [w for said in _words(marked) for w in language.contractions.get(said, said).split()]
    text = f" {' '.join(words)} "
    for cue in language.state_cues:
        at = text.find(f" {cue} ")
        if at >= 0 and not any(text.startswith(f" {e} ", at) for e in language.cue_exceptions):
            return True
    if language.hypothetical & set(words):
        return False
    subjects = language.owners | language.someone | {_AN_ID}
    for i, word in enumerate(words[:-1]):
        if word in language.state_auxiliaries and words[i + 1] in subjects:
            return True  # "is my ...", "has anyone ..."
        owner = i + 2 if words[i + 1] in language.partitive else i + 1  # "which of my"
        after = set(words[owner + 1 : owner + 5])
        if (
            word in language.wh_words
            and owner < len(words)
            and words[owner] in language.owners | {_AN_ID}
            and (language.state_auxiliaries & after)
        ):
            return True  # "... when my order will arrive"
    return False


def asks_about_it(question: str) -> bool:
    """Whether the question's subject is a thing spoken of before ("When should it
    arrive?", "Has it shipped?", "Is SO-1002 late?"): copilot/reading_words.py, in
    every language it knows."""
    return any(_asks_about_it(question, words) for words in LANGUAGES)


def _asks_about_it(question: str, language: ReadingWords) -> bool:
    opened = re.sub(rf"^\s*{_FILLERS}", "", question, flags=re.IGNORECASE)  # "And when ..."
    words = [w for s in _words(_marked(opened)) for w in language.contractions.get(s, s).split()]
    if language.hypothetical & set(words):
        return False
    verbs = language.state_auxiliaries | language.modals
    start = 0
    if words and words[0] in language.wh_words:  # "when ...", "how long ...", "what priority ..."
        start = 1 if len(words) > 1 and words[1] in verbs else 2
    if len(words) < start + 2 or words[start] not in verbs:
        return False
    return words[start + 1] in language.things | language.owners | {_AN_ID}


def asks_how_it_works(question: str) -> bool:
    """Whether the message, whatever identifier it gives, also asks how things work
    ("HD-1004 is a P2. How quickly should a P2 be resolved?") rather than only for a
    lookup or an action on that thing ("Where are we with HD-1002?", "Can you chase
    SO-1003?"): copilot/reading_words.py, in every language it knows. A question that
    asks what something means does ("What does the status 'pending' mean on
    HD-1001?"); one that otherwise asks for the thing's state (`asks_for_state`) never
    does."""
    if any(language.definitional & set(_words(question)) for language in LANGUAGES):
        return True
    if asks_for_state(question):
        return False
    return any(_asks_how_it_works(question, words) for words in LANGUAGES)


def _asks_how_it_works(question: str, language: ReadingWords) -> bool:
    marked = _marked(question.replace("\u2019", "'"))
    thing = language.owners | language.someone | language.the_thing | {_AN_ID}
    not_a_kind = language.state_auxiliaries | language.modals | thing
    for clause in re.split(r"[.,!?;:\n]+|\s[-\u2013\u2014]\s", marked):
        said = _words(clause)
        words = [w for s in said for w in language.contractions.get(s, s).split()]
        if not words:
            continue
        first, second = words[0], words[1] if len(words) > 1 else ""
        if first in language.general_wh and second and second not in not_a_kind:
            return True  # "what warranty ...", "how quickly ..."
        named = len(words) > 2 and words[2] == _AN_ID  # "has order SO-1002 ...": its name
        if first in language.state_auxiliaries and second and second not in thing and not named:
            return True  # "are returns free?"
        for i, word in enumerate(words):
            after = words[i + 1] if i + 1 < len(words) else ""
            if word in language.modals and after and after not in language.asking_to_act:
                return True  # "should a P2 ...", "can I ..."
            if word in language.hypothetical and not (
                language.whether_verbs & set(words[max(0, i - 2) : i])
            ):
                return True  # "if it is resolved ...", not "see if"
    return False


def _spaced(name: str) -> str:
    return name_in_words(name).replace("-", " ")


def _name_words(name: str) -> set[str]:
    return {_stem(w) for w in _words(_spaced(name)) if len(w) > 2 and w not in _ENGLISH}


def _tool_words(tool: Tool) -> set[str]:
    words = _words(f"{tool.description} {tool.name.replace('_', ' ')}")
    return {_stem(w) for w in words if len(w) > 3 and w not in _ENGLISH}


def _stems(text: str) -> set[str]:
    return {_stem(w) for w in _words(text)}


def _stem(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) > len(suffix) + 3:
            return word[: -len(suffix)]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word
