"""Running the tool calls of one model turn.

The calls of one turn are independent of each other, so they run concurrently. Every
failure the model can act on comes back to it as an error result, never as an
exception that ends the run: an unknown tool, arguments that are not JSON or do not
match the schema, a tool that raises or times out, a denied approval. What the runtime
says about those is a note of copilot/runtime_notes.py (never shown as an answer).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pilothouse.copilot import runtime_notes as notes
from pilothouse.copilot.events import ToolOutcome
from pilothouse.tools.toolset import Toolset
from pilothouse.types import ToolCallPart, ToolSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Decision:
    approved: bool
    note: str = ""


@dataclass(frozen=True, slots=True)
class ClientTools:
    """Tools the caller runs itself (declared in its request, e.g. an OpenAI Agents SDK
    agent's function tools): the model may call them beside the copilot's own; such a
    call is handed back to the caller, and its result (`results`, by call id) continues
    the run."""

    specs: tuple[ToolSpec, ...] = ()
    results: Mapping[str, str] = field(default_factory=dict)

    def handed(self, calls: Sequence[ToolCallPart]) -> list[ToolCallPart]:
        """The calls of the caller's tools that have no result yet."""
        names = {s.name for s in self.specs}
        return [c for c in calls if c.name in names and c.id not in self.results]


NO_CLIENT_TOOLS = ClientTools()


def toolset_needs_approval(toolset: Toolset, call: ToolCallPart) -> bool:
    tool = toolset.get(call.name)
    return tool is not None and tool.requires_approval


def needing_approval(
    toolset: Toolset, calls: Sequence[ToolCallPart], decisions: Mapping[str, Decision]
) -> list[ToolCallPart]:
    """The calls that need a person's decision that has not been given yet."""
    return [c for c in calls if toolset_needs_approval(toolset, c) and c.id not in decisions]


def describe_call(toolset: Toolset, call: ToolCallPart) -> str:
    """One line for a person deciding the call: the call and what the tool does."""
    tool = toolset.get(call.name)
    what = tool.description.splitlines()[0] if tool and tool.description else call.name
    return f"{call.name}({call.arguments_json}) — {what}"


async def run_calls(
    toolset: Toolset,
    calls: Sequence[ToolCallPart],
    *,
    decisions: Mapping[str, Decision],
    timeout_s: float,
    results: Mapping[str, str] | None = None,
) -> list[ToolOutcome]:
    """Run every call (approved ones included); a call with a result in `results` (a
    caller's tool, run by the caller) is not run, its result is taken. Outcomes in the
    order of `calls`."""
    given = results or {}

    async def one(call: ToolCallPart) -> ToolOutcome:
        if call.id in given:
            return ToolOutcome(call, given[call.id], False, 0.0, None, time.time())
        return await _run_one(toolset, call, decisions, timeout_s)

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def _run_one(
    toolset: Toolset,
    call: ToolCallPart,
    decisions: Mapping[str, Decision],
    timeout_s: float,
) -> ToolOutcome:
    started = time.monotonic()
    started_at = time.time()

    def outcome(content: str, is_error: bool, approved: bool | None = None) -> ToolOutcome:
        duration = time.monotonic() - started
        return ToolOutcome(call, content, is_error, duration, approved, started_at)

    tool = toolset.get(call.name)
    if tool is None:
        known = ", ".join(toolset.names) or "none"
        return outcome(notes.UNKNOWN_TOOL.write(name=repr(call.name), known=known), True)
    action = notes.action_of(tool.description)
    if call.raw_arguments is not None:
        excerpt = repr(call.raw_arguments[:200])
        return outcome(notes.NOT_JSON.write(action=action, excerpt=excerpt), True)
    approved: bool | None = None
    if tool.requires_approval:
        decision = decisions.get(call.id)
        approved = bool(decision and decision.approved)
        if not approved:
            why = f" ({decision.note})" if decision and decision.note else ""
            return outcome(notes.DENIED.write(action=action, why=why), True, approved=False)
    try:
        async with asyncio.timeout(timeout_s):
            result = await toolset.call(call.name, call.arguments, approved=bool(approved))
    except TimeoutError:
        seconds = f"{timeout_s:g}"
        return outcome(notes.TIMED_OUT.write(action=action, seconds=seconds), True, approved)
    except Exception as exc:  # a tool must not end the run; the model hears what happened
        log.exception("tool %s raised", call.name)
        error = f"{type(exc).__name__}: {exc}"
        return outcome(notes.FAILED.write(action=action, error=error), True, approved)
    return outcome(result.content, result.is_error, approved)
