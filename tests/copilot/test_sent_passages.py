"""A follow-up's cut of a passage given above: what of it the history holds."""

from __future__ import annotations

from pilothouse.copilot.events import Citation
from pilothouse.copilot.grounding import Retrieval, context_block
from pilothouse.copilot.sent_passages import unseen
from pilothouse.types import Message

# A PDF page as its loader reads it: the section's number is a sentence of the paragraph.
POLICY = (
    "Admins request their rights. 7. Lost or stolen devices A lost laptop must be "
    "reported within 1 hour. Thefts must also be reported to the police."
)


def cite(text: str) -> Citation:
    return Citation(1, "policy.pdf", "Policy", 3, (), "", 1, 0.6, text=text)


def test_a_cut_that_begins_with_a_section_number_sends_only_what_is_not_above() -> None:
    # The follow-up's cut begins with the sentence "7.": read again, it is one numbered
    # list item that no block above holds, and the whole of it was sent again (the
    # helpdesk's stolen-laptop follow-up: 148 of its ~190 new tokens).
    above = "Lost or stolen devices A lost laptop must be reported within 1 hour."
    history = [
        Message.user(f"{context_block([cite(POLICY)], [above])}\n\nQuestion: How quickly?"),
        Message.assistant("Within 1 hour [1]."),
    ]
    cut = (
        "7. Lost or stolen devices A lost laptop must be reported within 1 hour. "
        "Thefts must also be reported to the police."
    )
    after = unseen(Retrieval([cite(POLICY)], "...", texts=(cut,)), history)
    assert [c.number for c in after.citations] == [1]
    assert after.context == (
        "[1] (policy.pdf, page 3)\n7. Thefts must also be reported to the police."
    )


def test_a_block_above_that_begins_with_a_section_number_counts_as_held() -> None:
    above = "7. Lost or stolen devices A lost laptop must be reported within 1 hour."
    history = [
        Message.user(f"{context_block([cite(POLICY)], [above])}\n\nQuestion: How quickly?"),
        Message.assistant("Within 1 hour [1]."),
    ]
    cut = "Lost or stolen devices A lost laptop must be reported within 1 hour."
    after = unseen(Retrieval([cite(POLICY)], "...", texts=(cut,)), history)
    assert after.context == "[1] (policy.pdf, page 3), given above."
