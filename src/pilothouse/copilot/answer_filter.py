"""Nothing internal reaches the user: the answer filter every answer streams through.

Small models sometimes answer with what they were told instead of an answer: the
runtime's step-limit note ("The tool step limit of this copilot is reached: do not
call tools."), the grounding instructions, a parameter's description, a function's
name or its call syntax (`{"tool_calls": ...}`, `order_status(order_id=...)`). The
filter reads the answer sentence by sentence as it streams. A sentence is held while
its words so far occur in an internal text, and dropped when it is
complete and internal; as soon as its words leave every internal text's opening, it
is released word by word (the last, unfinished word waits, so a function name or a
`[n]` marker is never cut), and what follows call syntax or a function name in it is
dropped. It also removes
`[n]` markers that point at no passage the model was given, and counts them.

The runtime's own notes in the run's messages (copilot/runtime_notes.py: a denied
approval, a blocked call, the step limit) are recognised with their fields: a sentence
that is, or mostly is, one of them is replaced by that note's plain sentence for the
user ("I did not start a return, because it was declined."), once per note.

What it dropped and why is kept for the trace (a `guard` span); when it dropped the
whole answer, the runtime says so in plain words instead of showing nothing.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pilothouse.copilot.runtime_notes import Note, notes_in
from pilothouse.types import Message

_BOUNDARY = re.compile(r"[.!?][\"')]*(?=\s)|\n")  # a closing bracket or quote included
_MARKER = re.compile(r" ?\[(\d{1,3})\]")
_CALL_SYNTAX = re.compile(
    r"\{\s*\"(?:tool_calls|decision)\"\s*:"  # the emulated envelope, the decision step
    r"|</?tool_(?:result|call)|</?tools>|\bcall:[A-Za-z_]",
)
_WORD = re.compile(r"[a-z0-9']+")
MIN_WORDS = 5
"""A sentence shorter than this is never taken for internal text (too little to tell)."""
OPENING = 6
SIMILAR = 0.85

NO_ANSWER_LEFT = (
    "Sorry, I could not put together an answer to that. Could you rephrase the question?"
)
"""Said instead when every sentence of an answer was internal text."""


def _normal(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _is_identifier(name: str) -> bool:
    """A tool name that cannot be an ordinary word: has `_`, a digit or an inner
    capital (order_status, getOrder); "search" is a word and is left alone."""
    return "_" in name or any(c.isdigit() for c in name) or name[1:] != name[1:].lower()


@dataclass(frozen=True, slots=True)
class InternalTexts:
    """What must not reach the user: texts (instructions, notes, descriptions) and the
    names of the tools."""

    texts: tuple[str, ...]
    tool_names: tuple[str, ...] = ()
    openings: frozenset[str] = frozenset()
    """Every run of 1 to `OPENING` words of each text (a model may copy a text from
    its middle: "your answer, from the function results"): a sentence whose words so
    far are none of these can be released as it streams."""

    @classmethod
    def of(cls, texts: Iterable[str], tool_names: Iterable[str] = ()) -> InternalTexts:
        sentences = [normal for text in texts for normal in _sentences(text)]
        names = tuple(n for n in tool_names if _is_identifier(n))
        return cls(tuple(dict.fromkeys(sentences)), names, _openings(sentences))

    def could_start(self, text: str) -> bool:
        """Whether a sentence beginning with `text` could still be (part of) an
        internal text: its words so far (up to `OPENING`) occur in one."""
        return _could_start(self.openings, text)

    def syntax(self, text: str) -> tuple[int, str] | None:
        """Where call syntax or a function name starts in `text`, and which it is."""
        found = _CALL_SYNTAX.search(text)
        best = (found.start(), "call_syntax") if found else None
        for name in self.tool_names:
            match = re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text)
            if match is not None and (best is None or match.start() < best[0]):
                best = (match.start(), "function_name")
        return best

    def reason(self, sentence: str) -> str | None:
        """Why `sentence` is internal (call_syntax, function_name, instructions), or None."""
        syntax = self.syntax(sentence)
        if syntax is not None:
            return syntax[1]
        normal = _normal(sentence)
        if len(normal.split()) < MIN_WORDS:
            return None
        for text in self.texts:
            if normal in text or text in normal:
                return "instructions"
            matcher = difflib.SequenceMatcher(None, normal, text, autojunk=False)
            if matcher.real_quick_ratio() >= SIMILAR and matcher.ratio() >= SIMILAR:
                return "instructions"
        return None


@dataclass(frozen=True, slots=True)
class RunNotes:
    """The runtime's notes in the messages a model was sent, by sentence."""

    sentences: tuple[tuple[str, Note], ...] = ()
    openings: frozenset[str] = frozenset()

    @classmethod
    def of(cls, messages: Iterable[Message]) -> RunNotes:
        found: list[Note] = []
        for message in messages:
            texts = [r.content for r in message.tool_results]
            if message.role == "user":
                texts.append(message.text)
            found.extend(note for text in texts for note in notes_in(text))
        sentences = [
            (normal, note)
            for note in found
            for normal in _sentences(note.text, r"(?<=[.!?])\s+|\n+")  # "Not done: ..." whole
        ]
        return cls(tuple(sentences), _openings([normal for normal, _ in sentences]))

    def could_start(self, text: str) -> bool:
        """Whether a sentence beginning with `text` could still be a note, after a word
        or two of its own ("Error: Not done: ...")."""
        words = _normal(text).split()
        return bool(self.sentences) and any(
            _could_start(self.openings, " ".join(words[skip:])) for skip in range(3)
        )

    def find(self, sentence: str) -> Note | None:
        """The note `sentence` is, or mostly is (most of its words copied from it)."""
        normal = _normal(sentence)
        words = normal.split()
        if len(words) < MIN_WORDS:
            return None
        for text, note in self.sentences:
            if normal in text or text in normal:
                return note
            matcher = difflib.SequenceMatcher(None, words, text.split(), autojunk=False)
            copied = sum(block.size for block in matcher.get_matching_blocks())
            if copied >= SIMILAR * len(words):
                return note
        return None


NO_NOTES = RunNotes()


def _sentences(text: str, ends: str = r"(?<=[.!?:])\s+|\n+") -> list[str]:
    """The sentences of `text` long enough to tell (normalised)."""
    pieces = (_normal(piece) for piece in re.split(ends, text))
    return [normal for normal in pieces if len(normal.split()) >= MIN_WORDS]


def _openings(sentences: Iterable[str]) -> frozenset[str]:
    return frozenset(
        " ".join(words[i : i + n])
        for words in (s.split() for s in sentences)
        for i in range(len(words))
        for n in range(1, OPENING + 1)
    )


def _could_start(openings: frozenset[str], text: str) -> bool:
    words = _normal(text).split()[:OPENING]
    return not words or " ".join(words) in openings


@dataclass
class AnswerFilter:
    """Reads an answer as it streams (`feed`, then `finish`) and releases what may be
    shown. `passages`: the [n] numbers the model was given."""

    internal: InternalTexts
    passages: frozenset[int] = frozenset()
    structured: bool = False
    """The answer is structured output (JSON of the copilot's own schema): passed as it is."""
    notes: RunNotes = NO_NOTES
    """The runtime's notes the model was sent (an answer that repeats one is replaced)."""
    kept: list[str] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    invalid_markers: list[int] = field(default_factory=list)
    _sentence: str = ""
    """The current sentence: what of it is not released yet."""
    _open: bool = False
    """Part of the current sentence was released (it is not internal text)."""
    _cut: bool = False
    """The rest of the current sentence is dropped (call syntax or a function name)."""
    _said: set[str] = field(default_factory=set)
    """The plain sentences already said for notes the answer repeated."""

    def feed(self, text: str) -> str:
        """The text that can be shown now."""
        if self.structured:
            return self._keep(text)
        self._sentence += text
        out: list[str] = []
        while True:
            boundary = _BOUNDARY.search(self._sentence)
            if boundary is None:
                break
            whole, self._sentence = (
                self._sentence[: boundary.end()],
                self._sentence[boundary.end() :],
            )
            out.append(self._complete(whole))
        out.append(self._partial())
        return self._keep("".join(out))

    def finish(self) -> str:
        """The rest, once the answer is complete."""
        rest, self._sentence = self._sentence, ""
        return self._keep(self._complete(rest) if rest else "")

    def _complete(self, sentence: str) -> str:
        """A whole sentence (or the rest of an open one)."""
        opened, cut = self._open, self._cut
        self._open = self._cut = False
        if cut:
            return ""
        if not opened:
            if sentence.strip() and not self._has_words(sentence):
                # Punctuation alone ("...", a copied placeholder) before any words: no answer.
                self.dropped.append((sentence.strip(), "no_words"))
                return ""
            note = self.notes.find(sentence) if sentence.strip() else None
            if note is not None:
                self.dropped.append((sentence.strip(), "runtime_note"))
                return self._instead(sentence, note)
            reason = self.internal.reason(sentence) if sentence.strip() else None
            if reason is not None:
                self.dropped.append((sentence.strip(), reason))
                return ""
            return self._markers(sentence)
        return self._markers(self._until_syntax(sentence))

    def _partial(self) -> str:
        """What of the unfinished sentence can go now: all but its last word, once the
        sentence cannot be internal text."""
        if self._cut or not self._sentence:
            return ""
        space = max(self._sentence.rfind(" "), self._sentence.rfind("\t"))
        if space <= 0:
            return ""
        ready = self._sentence[:space]  # whole words only (a space may lead a marker)
        held = self.internal.could_start(ready) or self.notes.could_start(ready)
        if not self._open and held:
            return ""
        self._sentence = self._sentence[space:]
        self._open = True
        return self._markers(self._until_syntax(ready))

    def _instead(self, sentence: str, note: Note) -> str:
        """The note's plain sentence in place of `sentence` (once per note)."""
        said = note.said
        if said in self._said:
            return ""
        self._said.add(said)
        return sentence[: len(sentence) - len(sentence.lstrip())] + said

    def _until_syntax(self, text: str) -> str:
        found = self.internal.syntax(text)
        if found is None:
            return text
        self.dropped.append((text[found[0] :].strip(), found[1]))
        self._cut = True
        return text[: found[0]].rstrip()

    def _has_words(self, sentence: str) -> bool:
        return bool(_WORD.search(sentence.lower()) or _WORD.search(self.text.lower()))

    def _markers(self, text: str) -> str:
        return _MARKER.sub(self._marker, text)

    def _keep(self, released: str) -> str:
        if not self.text and self.dropped:
            released = released.lstrip()  # no leading space where a sentence was dropped
        if released:
            self.kept.append(released)
        return released

    def _marker(self, match: re.Match[str]) -> str:
        number = int(match.group(1))
        if number in self.passages:
            return match.group(0)
        self.invalid_markers.append(number)
        return ""

    @property
    def text(self) -> str:
        """Everything released so far."""
        return "".join(self.kept)

    @property
    def emptied(self) -> bool:
        """Every sentence was dropped: nothing of the answer is left to show."""
        return bool(self.dropped) and not self.text.strip()
