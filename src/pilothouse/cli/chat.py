"""`pilothouse init NAME` and `pilothouse chat PATH`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pilothouse.cli.common import configure_logging, err, fail, out, run, settings
from pilothouse.cli.run_view import show_run
from pilothouse.copilot import Answer, Copilot
from pilothouse.copilot.templates import copy_template
from pilothouse.errors import PilothouseError

HELP = """\
/new       start a new conversation
/sources   the passages behind the last answer
/trace     the trace of the last run (pilothouse trace RUN_ID)
/model     the model that answered last
/help      this list
/quit      leave (also Ctrl-D)"""


def init_command(
    name: Annotated[str, typer.Argument(help="the copilot's name and folder, e.g. it-helpdesk")],
    folder: Annotated[
        Path | None, typer.Option("--folder", help="where to create it (default: ./NAME)")
    ] = None,
) -> None:
    """Create a working copilot: instructions, sample knowledge, a tool and evals."""
    target = folder or Path(name)
    try:
        written = copy_template(target, name=Path(name).name)
    except PilothouseError as exc:
        fail(exc)
    err.print(f"created {target}/ ({len(written)} files)")
    err.print(f"next: pilothouse chat {target}")


async def _open(path: Path, model: list[str] | None) -> Copilot:
    err.print(f"[dim]opening {path} (indexing knowledge that changed)…[/]")
    return await Copilot.open(path, settings=settings(), model=model or None)


async def _chat(path: Path, model: list[str] | None) -> None:
    copilot = await _open(path, model)
    conversation: str | None = None
    last: Answer | None = None
    err.print(f"[bold]{copilot.name}[/] — ask a question, /help for commands, /quit to leave")
    try:
        while True:
            try:
                question = err.input("[bold cyan]you>[/] ").strip()
            except EOFError:
                err.print()
                break
            if not question:
                continue
            if question.startswith("/"):
                command = question.split()[0].lower()
                if command in ("/quit", "/exit", "/q"):
                    break
                if command == "/new":
                    conversation = None
                    err.print("[dim]new conversation[/]")
                elif command == "/sources":
                    for c in last.citations if last else ():
                        err.print(f"[{c.number}] {c.where}\n    {c.snippet}")
                elif command == "/trace":
                    err.print(f"pilothouse trace {last.run_id}" if last else "no run yet")
                elif command == "/model":
                    err.print(last.model if last and last.model else "no answer yet")
                else:
                    err.print(HELP)
                continue
            events = copilot.stream(question, conversation_id=conversation)
            last = await show_run(copilot, events, out=out)
            if last is not None:
                conversation = last.conversation_id or conversation
    finally:
        await copilot.aclose()


def chat_command(
    path: Annotated[Path, typer.Argument(help="the copilot folder")],
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="use this model id instead (repeat for a chain)"),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Chat with a copilot in the terminal (streaming, citations, approvals)."""
    configure_logging(verbose)
    run(_chat(path, model))


async def ask_copilot(path: Path, question: str, model: list[str] | None, quiet: bool) -> int:
    copilot = await _open(path, model)
    try:
        answer = await show_run(copilot, copilot.stream(question), out=out, quiet=quiet)
    finally:
        await copilot.aclose()
    if answer is None or answer.status == "failed":
        return 1
    return 3 if answer.status == "awaiting_approval" else 0
