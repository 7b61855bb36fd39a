"""Showing a copilot run in the terminal: streamed text, tool calls, approvals,
citations, and a footer with the model, tokens and cost."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape

from pilothouse.cli.common import err
from pilothouse.copilot import Answer, Copilot, Decision, RunEvent
from pilothouse.copilot.events import (
    ApprovalRequired,
    PendingApproval,
    Retrieved,
    RunFailed,
    RunFinished,
    RunStarted,
    ToolCallFinished,
    ToolCallStarted,
)
from pilothouse.types import TextDelta

Approver = Callable[[PendingApproval], Awaitable[bool | None]]
"""A decision for one pending tool call: True approves, False denies, None leaves the
run paused (nobody is there to decide)."""

Asker = Callable[[str], str]
"""Reads one line from the person at the terminal, showing the prompt as given."""


def plain_input(prompt: str) -> str:
    err.print(prompt, end="", markup=False, highlight=False)
    return input()


def terminal_approver(ask_line: Asker = plain_input) -> Approver:
    """Ask the person at the terminal `approve? [y/N]`; without a terminal the run
    stays paused (None) so a script can decide later with `pilothouse approve`."""

    async def decide(pending: PendingApproval) -> bool | None:
        describe(pending)
        if not sys.stdin.isatty():
            return None
        try:
            reply = ask_line("approve? [y/N] ").strip().lower()
        except EOFError:
            return None
        return reply in ("y", "yes")

    return decide


def fixed_approver(approve: bool) -> Approver:
    """`--yes` or `--no`: the same decision for every call, said on stderr."""

    async def decide(pending: PendingApproval) -> bool:
        describe(pending)
        err.print("[dim]approved (--yes)[/]" if approve else "[dim]denied (--no)[/]")
        return approve

    return decide


def approver_for(choice: bool | None, ask_line: Asker = plain_input) -> Approver:
    return terminal_approver(ask_line) if choice is None else fixed_approver(choice)


def describe(pending: PendingApproval) -> None:
    err.print(f"[bold yellow]approval needed:[/] {escape(pending.description)}")


@dataclass(frozen=True, slots=True)
class Waiting:
    """What the terminal shows until the answer's first words: `say(text)` tells what
    the run is doing now (reading N passages, running a tool), `stop()` ends it."""

    say: Callable[[str], None]
    stop: Callable[[], None]

    def __call__(self) -> None:
        self.stop()


def progress_note(event: RunEvent) -> str | None:
    """What a run is doing after `event`, said while no answer text has come yet."""
    if isinstance(event, Retrieved):
        count = len(event.passages)
        return f"reading {count} passage{'s' if count != 1 else ''}…"
    if isinstance(event, ToolCallStarted):
        return f"running {event.call.name}…"
    if isinstance(event, ToolCallFinished):
        return "reading the results…"
    return None


@dataclass(slots=True)
class Shown:
    """What a run shown in the terminal ended with."""

    answer: Answer | None
    trace_id: str | None
    """The stored run that produced the answer (after an approval: the resumption)."""


async def show_run(
    copilot: Copilot,
    events: AsyncIterator[RunEvent],
    *,
    approver: Approver,
    out: Console,
    quiet: bool = False,
    echo: bool = True,
    waiting: Waiting | None = None,
) -> Shown:
    """Print a run as it happens, asking for approvals and resuming; the last answer.

    `echo=False` prints nothing (for `--json`); `waiting` (a spinner) says what the
    run is doing (`progress_note`) until the answer's first text, an approval or the
    end stops it."""
    answer: Answer | None = None
    trace_id: str | None = None
    talk = echo and not quiet
    while True:
        pending: ApprovalRequired | None = None
        async for event in events:
            if waiting is not None:
                note = progress_note(event)
                if note is not None:
                    waiting.say(note)
                elif isinstance(event, TextDelta | ApprovalRequired | RunFinished | RunFailed):
                    waiting.stop()
                    waiting = None
            if isinstance(event, RunStarted):
                trace_id = event.run_id
            elif isinstance(event, TextDelta):
                if echo:
                    out.print(event.text, end="", markup=False, highlight=False)
                    out.file.flush()
            elif isinstance(event, ToolCallStarted) and talk:
                call = f"{event.call.name}({event.call.arguments_json})"
                err.print(f"\n[dim]→ {escape(call)}[/]")
            elif isinstance(event, ToolCallFinished) and talk:
                mark = "[red]✗[/]" if event.outcome.is_error else "[green]✓[/]"
                name = escape(event.outcome.call.name)
                err.print(f"[dim]{mark} {name} ({event.outcome.duration_s:.2f}s)[/]")
            elif isinstance(event, ApprovalRequired):
                pending = event
            elif isinstance(event, RunFinished | RunFailed):
                answer = event.answer
        if pending is None:
            break
        if echo:
            out.print()
        choices = {p.call.id: await approver(p) for p in pending.pending}
        if any(choice is None for choice in choices.values()):
            break  # nobody to decide: the run stays paused
        decisions = {call_id: Decision(bool(choice)) for call_id, choice in choices.items()}
        events = copilot.resume(pending.pending[0].run_id, decisions)
    if answer is not None and echo:
        _finish(answer, trace_id or answer.run_id, out, quiet)
    return Shown(answer, trace_id)


def _finish(answer: Answer, trace_id: str, out: Console, quiet: bool) -> None:
    if answer.status != "awaiting_approval":
        out.print()
    if answer.status == "failed":
        err.print(f"[bold red]error:[/] {escape(answer.error or 'the run failed')}")
        return
    if answer.citations:
        err.print("[bold]Sources[/]")
        for citation in answer.citations:
            matched = " [dim](matched, not cited by the model)[/]" if citation.inferred else ""
            err.print(f"  \\[{citation.number}] {escape(citation.where)}{matched}")
    if not quiet:
        cost = f" · ${answer.cost_usd:.6f}" if answer.cost_usd else ""
        usage = answer.usage
        err.print(
            f"[dim]{escape(answer.model or 'no model')} · {usage.input_tokens} in / "
            f"{usage.output_tokens} out{cost} · run {trace_id[:12]}[/]"
        )
