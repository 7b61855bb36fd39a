"""What the runtime writes for the model to read, and what the user is told instead
when a model copies it as its answer.

The runtime tells the model what happened to a call it asked for (a person denied it,
the grounded-argument check blocked it, the step limit left it out, it failed) and that
the step limit is reached. Small models answered with those notes word for word ("Error:
the user denied this action... Do not retry it; tell the user."). So each note says what
happened in words a user understands (`fact`), and apart from it, in brackets, what the
model should do (`guidance`); and each kind has the plain sentence the user is shown
when an answer repeats it (`said`: "I did not start a return, because it was declined.").

Every kind is defined here, once: the runtime writes its notes with `Kind.write`, and
the answer filter (copilot/answer_filter.py) reads the notes of a run's messages back
(`notes_in`), so that it recognises every note the runtime wrote, fields and all.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Note:
    """One note as written: its kind and the values of its fields."""

    kind: Kind
    fields: dict[str, str]

    @property
    def text(self) -> str:
        """What the model reads."""
        return self.kind.render(self.fields)

    @property
    def said(self) -> str:
        """What the user is shown instead of an answer that repeats the note."""
        return self.kind.said.format(**self.fields)


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of note: `fact` and `said` are templates over the same {fields}."""

    name: str
    fact: str
    guidance: str
    said: str
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pieces: list[str] = []
        for literal, name, _, _ in string.Formatter().parse(self.render_template()):
            pieces.append(re.escape(literal))
            if name:
                group = f"(?P={name})" if f"(?P<{name}>" in "".join(pieces) else f"(?P<{name}>.*?)"
                pieces.append(group)
        object.__setattr__(self, "pattern", re.compile("".join(pieces)))

    def render_template(self) -> str:
        return f"{self.fact} {self.guidance}".strip()

    def render(self, fields: dict[str, str]) -> str:
        return self.render_template().format(**fields)

    def write(self, **fields: str) -> str:
        """The note's text, on one line (a field's own line breaks become spaces)."""
        return Note(self, {k: re.sub(r"\s+", " ", v) for k, v in fields.items()}).text

    def read(self, line: str) -> Note | None:
        found = self.pattern.fullmatch(line)
        return Note(self, found.groupdict()) if found else None


DENIED = Kind(
    "denied",
    "Not done: the request to {action} was denied{why}.",
    "(Do not ask for it again; tell the user in your own words.)",
    "I did not {action}, because it was declined{why}.",
)
BLOCKED_NOT_GIVEN = Kind(
    "blocked_not_given",
    "Not done: the request to {action} did not run, because the user did not give {named}.",
    "(Identifying values must come from the user or from a tool result, never from "
    "examples or guesses. Ask the user for the {asks}.)",
    "To {action}, I need the {asks} from you. Could you give it to me?",
)
BLOCKED_IN_TEXT = Kind(
    "blocked_in_text",
    "Not done: the request to {action} did not run, because {named} names what the user "
    "did not give.",
    "(Leave it out, or ask the user.)",
    "To {action}, I need a few more details from you. Could you tell me more?",
)
BLOCKED_DESCRIPTION = Kind(
    "blocked_description",
    "Not done: the request to {action} did not run, because the value of {named} repeats "
    "the parameter's description instead of saying something.",
    "(Write it from what the user said, or ask the user.)",
    "To {action}, I need a few more details from you. Could you tell me more?",
)
NOT_RUN = Kind(
    "not_run",
    "Not done: the request to {action} did not run, because this question needed more "
    "steps than this copilot may take.",
    "",
    "I stopped before I could {action}: I may take only so many steps for one question.",
)
STEP_LIMIT = Kind(
    "step_limit",
    "This question needed more steps than this copilot may take, so it could not be finished.",
    "(Do not call functions now: answer with what you have, in your own words, and "
    "say that you could not finish.)",
    "I could not finish this: it needed more steps than I may take for one question.",
)
UNKNOWN_TOOL = Kind(
    "unknown_tool",
    "Not done: there is no function named {name} (the functions are: {known}).",
    "",
    "I could not do that: it is not something I can do here.",
)
NOT_JSON = Kind(
    "not_json",
    "Not done: the request to {action} did not run, because its arguments were not a "
    "JSON object: {excerpt}",
    "(Call it again with a JSON object that follows its schema.)",
    "I could not {action} this time.",
)
TIMED_OUT = Kind(
    "timed_out",
    "Not done: the request to {action} did not finish within {seconds}s.",
    "",
    "I could not {action}: it did not finish in time.",
)
FAILED = Kind(
    "failed",
    "Not done: the request to {action} failed: {error}",
    "",
    "I could not {action}: something went wrong.",
)

KINDS = (
    DENIED,
    BLOCKED_NOT_GIVEN,
    BLOCKED_IN_TEXT,
    BLOCKED_DESCRIPTION,
    NOT_RUN,
    STEP_LIMIT,
    UNKNOWN_TOOL,
    NOT_JSON,
    TIMED_OUT,
    FAILED,
)
"""Every note the runtime writes (the answer filter recognises these)."""


def notes_in(text: str) -> list[Note]:
    """The notes written in `text` (a tool result or a message), one per line."""
    found: list[Note] = []
    for line in text.splitlines():
        for kind in KINDS:
            note = kind.read(line.strip())
            if note is not None:
                found.append(note)
                break
    return found


def action_of(description: str) -> str:
    """What a call of a tool does, as the rest of "I did not ...": the first sentence
    of its description when it reads as an order ("Start a return for an order."), else
    "do that"."""
    first = re.split(r"(?<=[.!?])\s|\n", description.strip(), maxsplit=1)[0].strip()
    first = first.rstrip(".!")
    words = first.split()
    if not words or len(words) > 16 or not words[0].isalpha():
        return "do that"
    verb = words[0].lower()
    if verb.endswith("s") and not verb.endswith("ss"):  # "Returns ...": not an order
        return "do that"
    head = words[0] if words[0][1:2].isupper() else words[0].lower()  # keep "API ..."
    return " ".join([head, *words[1:]])
