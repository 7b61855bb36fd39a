"""A small copilot with knowledge, tools and an eval suite, and scripted models that
answer it well or badly, for the eval pipeline's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.models import FunctionModel, tool_call
from pilothouse.models.testing import Turn
from pilothouse.storage.evals import EvalStore
from pilothouse.types import Message, ModelRequest

TOOLS = '''
from pilothouse.tools import tool

CREATED = []


@tool(requires_approval=True)
def create_ticket(summary: str, priority: str = "medium") -> str:
    """Open a helpdesk ticket.

    Args:
        summary: one line saying what is wrong
        priority: low, medium or high
    """
    CREATED.append(summary)
    return f"HD-{1000 + len(CREATED)} created"


@tool(read_only=True)
def ticket_status(ticket_id: str) -> str:
    """The status of a ticket.

    Args:
        ticket_id: the ticket's id, like HD-1001
    """
    return f"{ticket_id}: open"
'''

DEFINITION = """\
name: evaldesk
instructions: prompts/instructions.prompty
knowledge:
  sources: [knowledge]
  retrieval: {mode: hybrid, top_k: 2}
  grounding: strict
tools:
  - python: tools.py
    functions: [create_ticket, ticket_status]
limits: {max_tool_steps: 2, max_output_tokens: 100}
memory: {window: 6, summarize: false}
evals:
  suites: [evals/basic.yaml]
"""

SUITE = """\
suite: basic
cases:
  - id: vpn-client
    question: Which VPN client do we use?
    reference: The VPN client is WireGuard, connecting to vpn.testcorp.example.
    expect:
      answer_includes: [WireGuard]
      sources:
        - file: knowledge/vpn.md
          heading: VPN
  - id: printer
    question: Where are the printers?
    expect:
      answer_includes: [["floor 3", "third floor"]]
      sources:
        - file: knowledge/vpn.md
          heading: Printing
  - id: open-ticket
    question: My monitor flickers, please open a ticket.
    expect:
      tool_calls:
        - name: create_ticket
          arguments_include:
            summary: [[monitor, screen]]
  - id: ticket-status
    question: What is the status of ticket HD-1001?
    expect:
      tool_calls:
        - name: ticket_status
          arguments: {ticket_id: HD-1001}
  - id: annual-leave
    question: How many days of annual leave do I get?
    expect:
      no_answer: true
  - id: which-ticket
    question: What is the status of my ticket?
    expect:
      forbidden_tools: [ticket_status]
      answer_matches: ["(?i)ticket (number|id)"]
  - id: json-answer
    question: Give the VPN port as JSON.
    expect:
      answer_schema:
        type: object
        properties: {port: {type: integer}}
        required: [port]
  - id: follow-up
    question: And which port does it use?
    conversation:
      - user: Which VPN client do we use?
      - assistant: WireGuard [1].
    expect:
      answer_includes: ["51820"]
"""


def question_of(request: ModelRequest) -> str:
    text = next(m.text for m in reversed(request.messages) if m.role == "user")
    return text.rsplit("Question:", 1)[-1].strip()


def good_answer(request: ModelRequest) -> Turn:
    """Answers every case of SUITE as the suite expects."""
    if request.messages[-1].role == "tool":
        return "Done: the ticket is HD-1001."
    q = question_of(request)
    if "VPN client" in q:
        return "Use WireGuard [1]."
    if "printers" in q:
        return "They are on floor 3, next to the kitchen [1]."
    if "monitor" in q:
        return tool_call("create_ticket", {"summary": "Monitor flickers", "priority": "medium"})
    if "HD-1001" in q:
        return tool_call("ticket_status", {"ticket_id": "HD-1001"})
    if "annual leave" in q:
        return "The knowledge base does not cover annual leave."
    if "my ticket" in q:
        return "Which ticket number do you mean? It looks like HD-1234."
    if "JSON" in q:
        return '{"port": 51820}'
    if "port" in q:
        earlier = [m.text for m in request.messages]
        assert any("WireGuard" in t for t in earlier[1:-1]), "the earlier turns reach the model"
        return "It uses port 51820 [1]."
    return "I do not know."


def bad_answer(request: ModelRequest) -> Turn:
    """Gets every case wrong."""
    if request.messages[-1].role == "tool":
        return "Done."
    q = question_of(request)
    if "VPN client" in q:
        return "Use OpenVPN [2]."
    if "printers" in q:
        return "In the basement."
    if "monitor" in q:
        return "Please restart your monitor."
    if "HD-1001" in q:
        return tool_call("ticket_status", {"ticket_id": "HD-9999"})
    if "annual leave" in q:
        return "You get 25 days [1]."
    if "my ticket" in q:
        return tool_call("ticket_status", {"ticket_id": "HD-1000"})
    if "JSON" in q:
        return "The port is 51820."
    return "Port 443."


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_sources(home=tmp_path / "home", environ={})


@pytest.fixture
def copilot_dir(tmp_path: Path) -> Path:
    return make_copilot(tmp_path)


def make_copilot(tmp_path: Path) -> Path:
    folder = tmp_path / "evaldesk"
    for sub in ("prompts", "knowledge", "evals"):
        (folder / sub).mkdir(parents=True)
    (folder / "prompts/instructions.prompty").write_text(
        "---\nname: evaldesk\n---\nsystem:\nYou are the test helpdesk. Cite passages as [n].\n"
    )
    (folder / "prompts/instructions.qwen.prompty").write_text(
        "---\nname: evaldesk\n---\nsystem:\nQwen variant of the test helpdesk.\n"
    )
    (folder / "knowledge/vpn.md").write_text(
        "# Remote access\n\n## VPN\n\nThe VPN client is WireGuard. Connect to "
        "vpn.testcorp.example on port 51820. Ask the service desk for a profile.\n\n"
        "## Printing\n\nPrinters are on floor 3 next to the kitchen. The model is a "
        "Xerox C8155.\n"
    )
    (folder / "tools.py").write_text(TOOLS)
    (folder / "copilot.yaml").write_text(DEFINITION)
    (folder / "evals/basic.yaml").write_text(SUITE)
    return folder


@pytest.fixture
def store(settings: Settings) -> EvalStore:
    return EvalStore.for_settings(settings)


def factory(**models: object):  # type: ignore[no-untyped-def]
    """A model factory: model id -> a FunctionModel with that id and the given body."""

    def make(model_id: str) -> list:  # type: ignore[type-arg]
        body = models[model_id]
        if isinstance(body, Exception):
            raise body
        return [FunctionModel(body, model_id=model_id)]  # type: ignore[arg-type]

    return make


def last_assistant(messages: list[Message]) -> str:
    return next(m.text for m in reversed(messages) if m.role == "assistant")
