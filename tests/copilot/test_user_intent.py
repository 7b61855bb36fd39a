"""Reading the user's message before the decision step: a request, a question, or
unknown; which tools that allows (a tool that changes data only for a request, a
read-only one without ids only for a request or a question about the user's own
things), with real tools built by the `@tool` decorator."""

from __future__ import annotations

from typing import Any

import pytest

from pilothouse.copilot.user_intent import (
    Reading,
    allows,
    asks_about_it,
    asks_for_state,
    asks_how_it_works,
    named_tools,
    read,
)
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
        # Verbs that pursue something already under way
        "Can you chase my printer ticket?",
        "Could you chase SO-1003 for me? It still has not shipped.",
        "Chase HD-1002 please, nobody has replied.",
        "Please follow up on my ticket.",
        "Could you hurry my order along?",
        "Can you nudge whoever has my laptop ticket?",
        "Can you expedite my order?",
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


def offers(
    tool: Any, question: str, *, reading: Reading = "question", has_id: bool = False
) -> bool:
    """Whether `tool` is offered when strict grounding found passages."""
    return allows(tool, reading, question, has_identifier=has_id, knowledge_found=True)


def test_a_tool_that_changes_data_only_for_a_request() -> None:
    assert offers(create_ticket, "x", reading="request")
    assert offers(create_ticket, "x", reading="unknown")
    assert not offers(create_ticket, "How do I open a ticket?")
    assert not offers(create_ticket, "Is HD-1002 open?", has_id=True)


def test_a_read_only_tool_with_an_id_is_asked_for_by_the_id() -> None:
    assert offers(ticket_status, "Any update on HD-1003?", has_id=True)
    assert not offers(ticket_status, "What is a P2?")


@pytest.mark.parametrize(
    ("question", "offered"),
    [
        ("Is my ticket resolved yet?", True),
        ("Which tickets do I have open?", True),
        ("Any news on the ticket I raised yesterday?", True),
        ("Where are we with my printer ticket?", True),
        ("Where do things stand on my ticket?", True),
        ("Can I raise a ticket by email?", False),
        ("What is the response target for a P2 ticket?", False),
        ("What is my department charged for a page?", False),
    ],
)
def test_a_read_only_tool_without_ids_for_a_question_about_the_users_own_things(
    question: str, offered: bool
) -> None:
    assert offers(list_my_tickets, question) is offered


@tool(read_only=True)
def lookup(term: str) -> str:
    """Look a term up in the asset register.

    Args:
        term: What to look up.
    """
    return "found"


def test_knowledge_first_a_lookup_when_no_passage_answers() -> None:
    def without_passages(tool: Any, question: str) -> bool:
        return allows(tool, "question", question, has_identifier=False, knowledge_found=False)

    assert without_passages(lookup, "Is laptop-7 registered?")
    assert not offers(lookup, "Is laptop-7 registered?")
    # Not for a question that has nothing to do with it.
    assert not without_passages(lookup, "What is the dress code?")
    assert not without_passages(list_my_tickets, "What is the dress code?")


def test_grounded_off_keeps_a_tool_offered() -> None:
    assert offers(ring_bell, "Who are you?")


@tool(requires_approval=True)
def request_return(order_id: str) -> str:
    """Start a return for an order.

    Args:
        order_id: The order number.
    """
    return "RMA-1"


@pytest.mark.parametrize(
    ("message", "named"),
    [
        ("Please start a return for SO-1002, I ordered the wrong model.", {"request_return"}),
        ("I want to return order SO-1001.", {"request_return"}),
        ("Please open a ticket, the printer is broken.", {"create_ticket"}),
        ("List my tickets", {"list_my_tickets"}),
        ("Can you check ticket HD-1002?", set()),  # no tool says "check": the model chooses
        ("Please raise a ticket for me.", set()),
        ("How do I start a return?", set()),  # not a request
    ],
)
def test_a_requests_verb_names_its_tools(message: str, named: set[str]) -> None:
    assert named_tools(message, [*TOOLS, request_return]) == named


@pytest.mark.parametrize(
    ("question", "state", "how"),
    [
        # A quantity, a price or a model number is not a thing of the user's to look up.
        ("What does the 2400 model cost?", False, False),
        ("How much does a 2400 model weigh?", False, True),
        ("Does 120 kg count as a heavy parcel?", False, True),
        ("I need 120 pounds of gravel. Is that too heavy for one van?", False, True),
        # A bare number, an order number or a key is one.
        ("Is SO-1001 here yet?", True, False),
        ("What is the status of order 2400?", True, False),
        ("Is 3031 here yet?", True, False),
        ("Has 3031 shipped?", True, False),
        ("Has order 3031 shipped?", True, False),
    ],
)
def test_a_quantity_is_read_as_no_identifier(question: str, state: bool, how: bool) -> None:
    assert (asks_for_state(question), asks_how_it_works(question)) == (state, how)


@pytest.mark.parametrize(
    "question",
    [
        "When should it arrive?",
        "And when will it get here?",
        "Has it shipped yet?",
        "What's its status?",
        "What priority is it?",
        "Where is my order?",
        "Is SO-1002 late?",
    ],
)
def test_a_question_whose_subject_is_a_thing_spoken_of_is_about_it(question: str) -> None:
    assert asks_about_it(question)


@pytest.mark.parametrize(
    "question",
    [
        "How many days do I have to return it?",  # the user's
        "How long is the warranty on it?",  # the warranty's
        "When does the warranty on the thermostat begin?",
        "How long does it usually take?",  # a case, not the thing
        "How do I get a return label?",
        "Do you do next-day delivery?",
        "Can I cancel it?",
    ],
)
def test_a_question_about_something_else_is_not(question: str) -> None:
    assert not asks_about_it(question)
