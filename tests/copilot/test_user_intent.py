"""Reading the user's message before the decision step: a request, a question, or
unknown; which tools that allows (a tool that changes data only for a request, a
read-only one without ids only for a request or a question about the user's own
things), with real tools built by the `@tool` decorator."""

from __future__ import annotations

from typing import Any

import pytest

from pilothouse.copilot.user_intent import allows, read
from pilothouse.tools import tool
from pilothouse.types import Message


@tool(requires_approval=True)
def create_ticket(summary: str, description: str) -> str:
    """Open a new helpdesk ticket.

    Args:
        summary: A short title.
        description: The problem in the user's words.
    """
    return "HD-1"


@tool(read_only=True)
def list_my_tickets() -> list[Any]:
    """List the user's own tickets."""
    return []


@tool(read_only=True)
def ticket_status(ticket_id: str) -> str:
    """Look up a ticket by its number.

    Args:
        ticket_id: The ticket number.
    """
    return "open"


@tool(grounded="off")
def ring_bell() -> str:
    """Ring the office bell."""
    return "rung"


TOOLS = [create_ticket, list_my_tickets, ticket_status]


@pytest.mark.parametrize(
    "message",
    [
        "Please raise a ticket for me, my laptop battery is empty.",
        "Can you open a ticket? My screen is broken.",
        "Could you please check ticket HD-1002?",
        "Open a ticket for the broken printer on floor 3",
        "My monitor flickers. Raise a ticket, it is not urgent.",
        "I'd like to send my thermostat back, it is too big.",
        "I\u2019d like to send it back.",
        "I want to return order SO-1001.",
        "I need you to look up my tickets",
        "I want a refund",
        "Can you show me all the tickets I have open?",
        "List my tickets",  # the first word of list_my_tickets' description
    ],
)
def test_requests(message: str) -> None:
    assert read(message, [], TOOLS) == "request"


@pytest.mark.parametrize(
    "message",
    [
        "How long is a Temporary Access Pass valid?",
        "Can I raise a ticket by email? Which address?",
        "I got a suspicious email. Should I open a ticket?",
        "The floor 3 printer keeps jamming. Do I need to raise a ticket?",
        "Can you tell me what priority my ticket got?",
        "Could you explain how the VPN works?",
        "My ticket is past its response target. What can I do?",
        "My laptop battery is empty after an hour.",  # a problem, not a request
        "What is my department charged for a black and white page?",
    ],
)
def test_questions(message: str) -> None:
    assert read(message, [], TOOLS) == "question"


def test_a_message_with_no_english_word_is_unknown() -> None:
    assert read("Ouvrez un ticket, mon écran est cassé.", [], TOOLS) == "unknown"
    assert read("HD-1002", [], TOOLS) == "unknown"


def test_a_reply_to_the_copilots_question_goes_on_with_the_request_before_it() -> None:
    asked = [
        Message.user("I want to return my thermostat."),
        Message.assistant("What is your order number?"),
    ]
    assert read("SO-1003. It is the wrong colour.", asked, TOOLS) == "request"
    offered = [
        Message.user("My keyboard stopped working."),
        Message.assistant("Shall I open a ticket for you?"),
    ]
    assert read("Yes, go on.", offered, TOOLS) == "request"
    assert read("Go ahead", offered, TOOLS) == "request"
    looked = [Message.user("Where is my order?"), Message.assistant("Which order number?")]
    assert read("It is SO-1002.", looked, TOOLS) == "question"
    # Without a question from the copilot, a yes is not a request.
    assert read("Yes, that helps.", [Message.assistant("It costs 6 pounds.")], TOOLS) == (
        "question"
    )


def test_a_tool_that_changes_data_only_for_a_request() -> None:
    for reading in ("request", "unknown"):
        assert allows(create_ticket, reading, "x", has_identifier=False, knowledge_found=True)
    assert not allows(
        create_ticket,
        "question",
        "How do I open a ticket?",
        has_identifier=False,
        knowledge_found=True,
    )
    assert not allows(
        create_ticket, "question", "Is HD-1002 open?", has_identifier=True, knowledge_found=True
    )


def test_a_read_only_tool_with_an_id_is_asked_for_by_the_id() -> None:
    assert allows(
        ticket_status,
        "question",
        "Any update on HD-1003?",
        has_identifier=True,
        knowledge_found=True,
    )
    assert not allows(
        ticket_status, "question", "What is a P2?", has_identifier=False, knowledge_found=True
    )


def test_a_read_only_tool_without_ids_for_a_question_about_the_users_own_things() -> None:
    for question in (
        "Is my ticket resolved yet?",
        "Which tickets do I have open?",
        "Any news on the ticket I raised yesterday?",
    ):
        assert allows(
            list_my_tickets, "question", question, has_identifier=False, knowledge_found=True
        ), question
    for question in (
        "Can I raise a ticket by email?",
        "What is the response target for a P2 ticket?",
        "What is my department charged for a page?",
    ):
        assert not allows(
            list_my_tickets, "question", question, has_identifier=False, knowledge_found=True
        ), question


@tool(read_only=True)
def lookup(term: str) -> str:
    """Look a term up in the asset register.

    Args:
        term: What to look up.
    """
    return "found"


def test_knowledge_first_a_lookup_when_no_passage_answers() -> None:
    question = "Is laptop-7 registered?"
    assert allows(lookup, "question", question, has_identifier=False, knowledge_found=False)
    assert not allows(lookup, "question", question, has_identifier=False, knowledge_found=True)
    # Not for a question that has nothing to do with it.
    assert not allows(
        lookup, "question", "What is the dress code?", has_identifier=False, knowledge_found=False
    )
    assert not allows(
        list_my_tickets,
        "question",
        "What is the dress code?",
        has_identifier=False,
        knowledge_found=False,
    )


def test_grounded_off_keeps_a_tool_offered() -> None:
    assert allows(ring_bell, "question", "Who are you?", has_identifier=False, knowledge_found=True)
