"""Rows are stored with known secrets masked: conversations (messages, titles,
summaries), paused runs; and a tool result that repeats a credential is masked before
the model, the conversation or the command line sees it."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from pilothouse.cli.app import app
from pilothouse.copilot.conversations import ConversationStore
from pilothouse.copilot.paused_runs import PausedRun, PausedRunStore
from pilothouse.tracing import Redactor
from pilothouse.types import Message, ToolCallPart, ToolResultPart

SECRET = "svc-token-9f8e7d6c5b4a"


def database_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


async def test_conversations_and_paused_runs_store_secrets_masked(tmp_path: Path) -> None:
    db = tmp_path / "pilothouse.db"
    redactor = Redactor(secret_values=[SECRET])
    with ConversationStore(db, redactor=redactor) as store:
        conversation = await store.create("desk")
        await store.append(
            conversation.id,
            [
                Message.user(f"why does {SECRET} fail?"),
                Message("tool", (ToolResultPart("c1", "lookup", f"401: token {SECRET}"),)),
                Message.assistant("It was refused."),
            ],
        )
        await store.set_summary(conversation.id, f"asked about {SECRET}", 1, expected_upto=0)
        stored = await store.messages(conversation.id)
        assert "[REDACTED]" in stored[1].parts[0].content  # type: ignore[union-attr]
    paused = PausedRunStore(db, redactor=redactor)
    call = ToolCallPart("c2", "create_ticket", {"summary": f"key {SECRET} leaked"})
    await paused.save(
        PausedRun(
            run_id="r1",
            conversation_id=conversation.id,
            copilot="desk",
            question=f"file {SECRET}",
            context="",
            citations=(),
            tail=(Message("assistant", (call,)),),
            pending=(call,),
            steps=1,
        )
    )
    paused.close()
    raw = database_bytes(db)
    assert SECRET.encode() not in raw and b"[REDACTED]" in raw


TOOL = '''
import os

from pilothouse.tools import tool


@tool(read_only=True)
def whoami() -> str:
    """Who the service thinks we are."""
    return "the service answered: you are " + os.environ["DESK_SERVICE_TOKEN"]
'''


def test_a_tool_result_repeating_a_credential_is_masked_on_the_command_line(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "desk"
    folder.mkdir()
    (folder / "tools.py").write_text(TOOL)
    (folder / "copilot.yaml").write_text(
        "name: desk\ninstructions: hi\ntools:\n  - python: tools.py\n    functions: [whoami]\n"
    )
    runner = CliRunner()
    environ = {"PILOTHOUSE_HOME": str(tmp_path / "home"), "DESK_SERVICE_TOKEN": SECRET}
    result = runner.invoke(app, ["tools", "call", str(folder), "whoami"], env=environ)
    assert result.exit_code == 0, result.output
    assert "you are [REDACTED]" in result.output and SECRET not in result.output
