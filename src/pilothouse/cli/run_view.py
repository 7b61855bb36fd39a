"""Showing a copilot run in the terminal: streamed text, tool calls, approvals,
citations, and a footer with the model, tokens and cost."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable

from rich.console import Console
from rich.markup import escape

from pilothouse.cli.common import err
from pilothouse.copilot import Answer, Copilot, Decision, RunEvent
from pilothouse.copilot.events import (
    ApprovalRequired,
    PendingApproval,
    RunFailed,
    RunFinished,
    ToolCallFinished,
    ToolCallStarted,
)
from pilothouse.types import TextDelta

Approver = Callable[[PendingApproval], Awaitable[bool]]


async def ask_in_terminal(pending: PendingApproval) -> bool:
    """Ask the person at the terminal; no answer (no terminal) means no."""
    err.print(f"[bold yellow]approval needed:[/] {pending.description}")
    if not sys.stdin.isatty():
        err.print("[dim]no terminal to ask: denied (use an interactive terminal to approve)[/]")
        return False
    reply = err.input("approve? [y/N] ").strip().lower()
    return reply in ("y", "yes")


async def show_run(
    copilot: Copilot,
    events: AsyncIterator[RunEvent],
    *,
    approver: Approver = ask_in_terminal,
    out: Console,
    quiet: bool = False,
) -> Answer | None:
    """Print a run as it happens, asking for approvals and resuming; the last answer."""
    answer: Answer | None = None
    while True:
        pending: ApprovalRequired | None = None
        async for event in events:
            if isinstance(event, TextDelta):
                out.print(event.text, end="", markup=False, highlight=False)
                out.file.flush()
            elif isinstance(event, ToolCallStarted) and not quiet:
                err.print(f"\n[dim]→ {event.call.name}({event.call.arguments_json})[/]")
            elif isinstance(event, ToolCallFinished) and not quiet:
                mark = "[red]✗[/]" if event.outcome.is_error else "[green]✓[/]"
                err.print(
                    f"[dim]{mark} {event.outcome.call.name} ({event.outcome.duration_s:.2f}s)[/]"
                )
            elif isinstance(event, ApprovalRequired):
                pending = event
            elif isinstance(event, RunFinished | RunFailed):
                answer = event.answer
        if pending is None:
            break
        decisions = {p.call.id: Decision(await approver(p)) for p in pending.pending}
        events = copilot.resume(pending.pending[0].run_id, decisions)
    if answer is not None:
        _finish(answer, out, quiet)
    return answer


def _finish(answer: Answer, out: Console, quiet: bool) -> None:
    if answer.status != "awaiting_approval":
        out.print()
    if answer.status == "failed":
        err.print(f"[bold red]error:[/] {answer.error}")
        return
    if answer.citations:
        err.print("[bold]Sources[/]")
        for citation in answer.citations:
            matched = " [dim](matched, not cited by the model)[/]" if citation.inferred else ""
            err.print(f"  [{citation.number}] {escape(citation.where)}{matched}")
    if not quiet:
        cost = f" · ${answer.cost_usd:.6f}" if answer.cost_usd else ""
        usage = answer.usage
        err.print(
            f"[dim]{answer.model or 'no model'} · {usage.input_tokens} in / "
            f"{usage.output_tokens} out{cost} · run {answer.run_id[:12]}[/]"
        )
