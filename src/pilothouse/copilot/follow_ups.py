"""How a follow-up's question is put to the model: next to the questions it follows.

A follow-up often says little alone ("And on floor 5?", "Is the IT Bar open then
too?"). Its passages and the earlier turns are in the prompt, above, but small models
read the question they are given and the text nearest to it: on issue 20's follow-up
sets the 0.5B answered "Floor 3" to "And what about floor 3?" and copied its previous
answer, and both models answered from a new, weaker passage printed just above the
question instead of the one given above (docs/local-model.md, "Follow-ups"). So a
follow-up's question is followed by the user's earlier questions of the conversation
(the last two, most recent last), quoted. What an answer to it should be (a full
sentence with its figures and their units, for this question) is said once in the
stepped turn's rules, in the cached system message. Deterministic: no model call; a
few prompt tokens and the quoted questions a follow-up. Stepped turns only (the embedded
models', where it was measured): a native turn's question is sent as it is, so a
hosted model's history fitted to its context window quotes no turn it left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from pilothouse.types import Message

EARLIER_QUESTIONS = 2
"""How many of the user's earlier questions a follow-up is put next to."""
_LONGEST = 200
"""An earlier question longer than this is cut (it is in the history, whole)."""
FOLLOWS = "This follows the earlier {what} {quoted}."
"""The note after a follow-up's question (an internal text: never an answer). How to
answer such a question is said once, in the stepped turn's rules (copilot/steps.py)."""


def earlier_questions(window: Sequence[Message], limit: int = EARLIER_QUESTIONS) -> tuple[str, ...]:
    """The user's last `limit` questions in `window` (messages as people saw them),
    oldest first; tool results and empty turns are not questions."""
    asked = [
        m.text.strip() for m in window if m.role == "user" and m.text.strip() and not m.tool_results
    ]
    return tuple(_cut(q) for q in asked[-limit:]) if limit > 0 else ()


def last_answer(history: Sequence[Message]) -> str:
    """The text of the assistant's last message in `history` (as the conversation
    keeps it: a quoted answer's whole JSON reply), "" before the first answer."""
    for message in reversed(history):
        if message.role == "assistant" and message.text.strip():
            return message.text
    return ""


def question_line(question: str, earlier: Sequence[str] = ()) -> str:
    """`Question: ...` as the model reads it: a follow-up's with the note after it."""
    if not earlier:
        return f"Question: {question}"
    quoted = " and ".join(f'"{q}"' for q in earlier)
    what = "question" if len(earlier) == 1 else "questions"
    return f"Question: {question}\n{FOLLOWS.format(what=what, quoted=quoted)}"


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _LONGEST else text[: _LONGEST - 1].rstrip() + "…"
