"""A copilot on the Jira and ServiceNow connectors, through the real runtime against
the vendors' wire-format fakes: "what are my open P1 incidents" is answered from
ServiceNow, and a Jira ticket is filed only after approval."""

from __future__ import annotations

import json
from pathlib import Path

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.models import FunctionModel
from pilothouse.testing.loopback import serve_app
from pilothouse.types import Message, ModelRequest, ToolCallPart
from tests.tools.fakes.helpdesk import (
    OPEN_P1_NUMBERS,
    OPEN_P1_QUERY,
    helpdesk_environ,
    write_helpdesk_copilot,
)
from tests.tools.fakes.jira import FakeJira
from tests.tools.fakes.servicenow import FakeServiceNow


def operator(request: ModelRequest) -> Message:
    """Stands in for a model: queries P1s, then files a ticket naming them."""
    last = request.messages[-1]
    question = next(m.text for m in reversed(request.messages) if m.role == "user")
    if last.role == "tool":
        result = last.tool_results[0]
        if result.name == "servicenow_query_records":
            numbers = [r["number"] for r in json.loads(result.content)["records"]]
            if "file a ticket" in question:
                call = ToolCallPart(
                    "c2",
                    "jira_create_issue",
                    {"summary": "Follow up open P1 incidents", "description": ", ".join(numbers)},
                )
                return Message.assistant("", (call,))
            return Message.assistant("Your open P1 incidents: " + ", ".join(numbers) + ".")
        return Message.assistant(f"Filed: {result.content}")
    return Message.assistant("", (ToolCallPart("c1", "servicenow_query_records", OPEN_P1_QUERY),))


async def test_open_p1_incidents_and_a_ticket_after_approval(tmp_path: Path) -> None:
    jira, servicenow = FakeJira(), FakeServiceNow()
    with serve_app(jira.app) as jira_url, serve_app(servicenow.app) as servicenow_url:
        folder = write_helpdesk_copilot(tmp_path / "helpdesk", jira_url, servicenow_url)
        settings = Settings.from_sources(home=tmp_path / "home", environ=helpdesk_environ())
        copilot = await Copilot.open(folder, settings=settings, models=[FunctionModel(operator)])
        try:
            answer = await copilot.ask("What are my open P1 incidents?")
            assert answer.status == "completed", answer.error
            assert all(number in answer.text for number in OPEN_P1_NUMBERS)

            before = len(jira.issues)
            paused = await copilot.ask("Find my open P1 incidents and file a ticket about them")
            assert paused.status == "awaiting_approval"
            assert paused.pending[0].call.name == "jira_create_issue"
            assert len(jira.issues) == before  # nothing filed before a person approves

            done = await copilot.approve(paused.run_id, approve=[paused.pending[0].call.id])
        finally:
            await copilot.aclose()
    assert done.status == "completed", done.error
    [created] = [i for k, i in jira.issues.items() if i["fields"]["summary"].startswith("Follow")]
    assert created["fields"]["project"]["key"] == "OPS"  # the binding, not the model, chose it
    assert "OPS-" in done.text
