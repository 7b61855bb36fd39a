from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot.events import Answer
from pilothouse.models.base import Model

TOOLS = '''
import asyncio

from pilothouse.tools import tool

STATE = {"running": 0, "most": 0, "created": []}


@tool(read_only=True)
async def lookup(term: str) -> str:
    """Look a term up in the asset register.

    Args:
        term: what to look up
    """
    STATE["running"] += 1
    STATE["most"] = max(STATE["most"], STATE["running"])
    await asyncio.sleep(0.05)
    STATE["running"] -= 1
    return f"{term}: asset found"


@tool(requires_approval=True)
def create_ticket(summary: str) -> str:
    """Open a helpdesk ticket.

    Args:
        summary: one line saying what is wrong
    """
    STATE["created"].append(summary)
    return f"HD-{1000 + len(STATE['created'])} created"


@tool(read_only=True)
def explode() -> str:
    """Always fails."""
    raise RuntimeError("the asset database is down")
'''

DEFINITION = """\
name: testdesk
instructions: prompts/instructions.prompty
model:
  primary: local:qwen2.5-coder-0.5b
knowledge:
  sources: [knowledge]
  retrieval: {mode: hybrid, top_k: 2}
  grounding: strict
tools:
  - python: tools.py
    functions: [lookup, create_ticket, explode]
limits: {max_tool_steps: 2, max_output_tokens: 100}
memory: {window: 6, summarize: false}
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_sources(home=tmp_path / "home", environ={})


@pytest.fixture
def copilot_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "testdesk"
    (folder / "prompts").mkdir(parents=True)
    (folder / "knowledge").mkdir()
    (folder / "prompts/instructions.prompty").write_text(
        "---\nname: testdesk\n---\nsystem:\nYou are the test helpdesk. Cite passages as [n].\n"
    )
    (folder / "prompts/instructions.claude.prompty").write_text(
        "---\nname: testdesk\n---\nsystem:\nClaude, you are the test helpdesk.\n"
    )
    (folder / "knowledge/vpn.md").write_text(
        "# Remote access\n\n## VPN\n\nThe VPN client is WireGuard. Connect to vpn.testcorp.example "
        "on port 51820. Ask the service desk for a profile.\n\n"
        "## Printing\n\nPrinters are on floor 3 next to the kitchen. The model is a Xerox C8155.\n"
    )
    (folder / "tools.py").write_text(TOOLS)
    (folder / "copilot.yaml").write_text(DEFINITION)
    return folder


async def ask_in_turn(
    folder: Path, settings: Settings, model: Model, *questions: str
) -> list[Answer]:
    """Ask `questions` one after the other in one conversation; the answers."""
    from pilothouse.copilot.copilot import Copilot

    copilot = await Copilot.open(folder, settings=settings, models=[model])
    answers: list[Answer] = []
    try:
        for question in questions:
            conversation = answers[-1].conversation_id if answers else None
            answers.append(await copilot.ask(question, conversation_id=conversation))
    finally:
        await copilot.aclose()
    return answers
