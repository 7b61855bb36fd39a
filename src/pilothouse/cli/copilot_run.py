"""Running a copilot from the command line (`ask`, `chat`, `approve`, `serve`): opening
it with indexing progress, showing its run, the JSON answer and the exit code, and
deciding on the tool calls of a run that paused for approval.

Commands import this module in their function: it loads the copilot runtime."""

from __future__ import annotations

import shlex
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pilothouse.cli.common import EXIT_FAILED, EXIT_OK, EXIT_PAUSED, err, out, print_json, settings
from pilothouse.cli.indexing import indexing_progress
from pilothouse.cli.run_view import Approver, Shown, Waiting, approver_for, show_run
from pilothouse.copilot import Answer, Copilot, Decision, RunEvent


async def open_copilot(
    path: Path, model: list[str] | None, *, quiet: bool = False, sync: bool = True
) -> Copilot:
    """Open a copilot folder, indexing what changed in its knowledge (with progress)."""
    with indexing_progress(path.name or str(path)) as progress:
        return await Copilot.open(
            path,
            settings=settings(),
            model=model or None,
            sync_knowledge=sync,
            progress=None if quiet else progress,
        )


@contextmanager
def spinner(text: str, enabled: bool = True) -> Iterator[Waiting]:
    """A spinner on stderr (terminals only) until the returned `Waiting` is stopped;
    `say()` changes what it says the run is doing."""
    if not enabled or not err.is_terminal:
        yield Waiting(lambda _: None, lambda: None)
        return
    status = err.status(text, spinner="dots")
    status.start()
    try:
        yield Waiting(status.update, status.stop)
    finally:
        status.stop()


async def show_copilot_run(
    copilot: Copilot,
    events: AsyncIterator[RunEvent],
    *,
    approver: Approver,
    quiet: bool,
    as_json: bool,
) -> Shown:
    first = "searching the knowledge…" if copilot.knowledge is not None else "reading the prompt…"
    with spinner(first, enabled=not as_json) as waiting:
        return await show_run(
            copilot,
            events,
            approver=approver,
            out=out,
            quiet=quiet,
            echo=not as_json,
            waiting=waiting,
        )


async def ask_copilot(
    path: Path,
    question: str,
    model: list[str] | None,
    *,
    quiet: bool = False,
    approve: bool | None = None,
    as_json: bool = False,
) -> int:
    copilot = await open_copilot(path, model, quiet=quiet or as_json)
    try:
        events = copilot.stream(question)
        shown = await show_copilot_run(
            copilot, events, approver=approver_for(approve), quiet=quiet, as_json=as_json
        )
    finally:
        await copilot.aclose()
    return outcome(shown, path, as_json)


def outcome(shown: Shown, path: Path, as_json: bool) -> int:
    """Print the JSON answer if asked; say how to resume a paused run; the exit code."""
    answer = shown.answer
    if as_json and answer is not None:
        print_json(answer_json(answer, shown.trace_id))
    if answer is None or answer.status == "failed":
        return EXIT_FAILED
    if answer.status == "awaiting_approval":
        resume = f"pilothouse approve {shlex.quote(str(path))} {answer.run_id[:12]}"
        err.print(
            f"paused for approval: run {answer.run_id[:12]} waits for a decision.\n"
            f"  approve: {resume} --yes\n  deny:    {resume} --no",
            markup=False,
            highlight=False,
        )
        return EXIT_PAUSED
    return EXIT_OK


def answer_json(answer: Answer, trace_id: str | None = None) -> dict[str, Any]:
    """A copilot's answer as `--json` prints it."""
    return {
        "status": answer.status,
        "text": answer.text,
        "model": answer.model,
        "run_id": trace_id or answer.run_id,
        "paused_run_id": answer.run_id if answer.status == "awaiting_approval" else None,
        "conversation_id": answer.conversation_id,
        "usage": {
            "input_tokens": answer.usage.input_tokens,
            "output_tokens": answer.usage.output_tokens,
            "cached_tokens": answer.usage.cached_tokens,
        },
        "cost_usd": answer.cost_usd,
        "citations": [c.to_dict() for c in answer.citations],
        "tool_calls": [
            {
                "id": o.call.id,
                "name": o.call.name,
                "arguments": o.call.arguments,
                "content": o.content,
                "is_error": o.is_error,
                "approved": o.approved,
            }
            for o in answer.tool_calls
        ],
        "pending": [
            {"id": p.call.id, "name": p.call.name, "arguments": p.call.arguments}
            for p in answer.pending
        ],
        "error": answer.error,
    }


async def approve_run(
    path: Path,
    run_id: str,
    approve: bool | None,
    model: list[str] | None,
    quiet: bool,
    as_json: bool,
) -> int:
    copilot = await open_copilot(path, model, quiet=True, sync=False)
    try:
        pending = await copilot.pending(run_id)
        approver = approver_for(approve)
        choices = {p.call.id: await approver(p) for p in pending}
        if any(choice is None for choice in choices.values()):
            err.print("no decision: the run stays paused (give --yes or --no)")
            return EXIT_PAUSED
        decisions = {call_id: Decision(bool(choice)) for call_id, choice in choices.items()}
        events = copilot.resume(pending[0].run_id, decisions)
        shown = await show_copilot_run(
            copilot, events, approver=approver, quiet=quiet, as_json=as_json
        )
    finally:
        await copilot.aclose()
    return outcome(shown, path, as_json)
