"""`pilothouse init NAME` and `pilothouse chat PATH`: the terminal chat, with line
editing and a history kept across sessions (readline), approvals asked in the open,
a spinner while the model reads the prompt, and slash commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pilothouse.cli.common import ApproveOption, configure_logging, err, fail, run, settings
from pilothouse.cli.completion import complete_model_id, copilot_folders
from pilothouse.errors import PilothouseError

if TYPE_CHECKING:
    from pilothouse.copilot import Answer

COMMANDS = ("/new", "/sources", "/trace", "/model", "/help", "/quit")
HELP = """\
/new       start a new conversation
/sources   the passages behind the last answer
/trace     the trace of the last run (pilothouse trace RUN_ID)
/model     the model that answered last
/help      this list
/quit      leave (also Ctrl-D)
Arrow keys edit the line and go through earlier questions (kept in the data directory)."""


def init_command(
    name: Annotated[str, typer.Argument(help="the copilot's name and folder, e.g. it-helpdesk")],
    folder: Annotated[
        Path | None, typer.Option("--folder", help="where to create it (default: ./NAME)")
    ] = None,
) -> None:
    """Create a working copilot: instructions, sample knowledge, a tool and evals."""
    from pilothouse.copilot.templates import copy_template

    target = folder or Path(name)
    try:
        written = copy_template(target, name=Path(name).name)
    except PilothouseError as exc:
        fail(exc)
    err.print(f"created {target}/ ({len(written)} files)", markup=False)
    err.print(f"next: pilothouse chat {target}", markup=False)


async def _chat(path: Path, model: list[str] | None, approve: bool | None) -> None:
    from pilothouse.cli.copilot_run import open_copilot, outcome, show_copilot_run, spinner
    from pilothouse.cli.line_editor import LineEditor
    from pilothouse.cli.run_view import approver_for

    copilot = await open_copilot(path, model)
    if copilot.models and copilot.models[0].runs_here():
        # The embedded model reads the copilot's instructions now, not in the first answer.
        with spinner("loading the model and reading the copilot's instructions…"):
            await copilot.read_ahead()
    editor = LineEditor(settings().home / "chat_history", COMMANDS)
    conversation: str | None = None
    last: Answer | None = None
    last_trace: str | None = None
    approver = approver_for(approve, editor.ask)
    err.print(f"[bold]{copilot.name}[/] — ask a question, /help for commands, /quit to leave")
    try:
        while True:
            try:
                question = editor.read("you> ").strip()
            except EOFError:
                err.print()
                break
            except KeyboardInterrupt:
                err.print("[dim](Ctrl-D or /quit to leave)[/]")
                continue
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
                        err.print(f"\\[{c.number}] {c.where}\n    {c.snippet}", markup=False)
                elif command == "/trace":
                    err.print(f"pilothouse trace {last_trace}" if last_trace else "no run yet")
                elif command == "/model":
                    err.print(last.model if last and last.model else "no answer yet")
                else:
                    err.print(HELP, markup=False)
                continue
            events = copilot.stream(question, conversation_id=conversation)
            shown = await show_copilot_run(
                copilot, events, approver=approver, quiet=False, as_json=False
            )
            if shown.answer is not None:
                last, last_trace = shown.answer, shown.trace_id
                conversation = last.conversation_id or conversation
                outcome(shown, path, as_json=False)  # a paused run: how to decide later
    finally:
        editor.save()
        await copilot.aclose()


def chat_command(
    path: Annotated[
        Path, typer.Argument(help="the copilot folder", autocompletion=copilot_folders)
    ],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="use this model id instead (repeat for a chain)",
            autocompletion=complete_model_id,
        ),
    ] = None,
    approve: ApproveOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="more logging")] = False,
) -> None:
    """Chat with a copilot in the terminal (streaming, citations, approvals)."""
    configure_logging(verbose)
    run(_chat(path, model, approve))
