"""Tool results as the model reads them, trimmed to a size budget.

A model's context is small and a REST API's answer is not. Results are rendered as
compact JSON; when that is over budget, long lists are cut (keeping the first
items) and long strings shortened, with a note saying what was left out, so the
model knows to narrow its query instead of trusting a partial list as complete.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pilothouse.types import ToolResultPart

DEFAULT_RESULT_BUDGET = 16_000
"""Characters of result text a tool returns to the model by default."""


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool call produced. `content` is the text the model reads; `data` the
    structured value when there is one (for traces and for the CLI)."""

    content: str
    is_error: bool = False
    data: Any = None

    @classmethod
    def error(cls, message: str) -> ToolResult:
        return cls(content=f"Error: {message}", is_error=True)

    def to_part(self, tool_call_id: str, name: str) -> ToolResultPart:
        return ToolResultPart(
            tool_call_id=tool_call_id, name=name, content=self.content, is_error=self.is_error
        )


def render(data: Any, budget: int = DEFAULT_RESULT_BUDGET) -> str:
    """`data` as text of at most about `budget` characters."""
    if isinstance(data, str):
        return _cut_text(data, budget)
    text = _dump(data)
    if len(text) <= budget:
        return text
    for items, chars in ((50, 2000), (20, 1000), (10, 500), (5, 200), (3, 100), (1, 60)):
        notes: list[str] = []
        trimmed = _shrink(data, items, chars, notes, "")
        text = _dump(trimmed)
        note = _note(notes)
        if len(text) + len(note) <= budget:
            return text + note
    return _cut_text(_dump(data), budget)


def _dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


def _cut_text(text: str, budget: int) -> str:
    if len(text) <= budget:
        return text
    keep = max(budget - 120, 0)
    return (
        text[:keep] + f"\n[truncated: {len(text) - keep} more characters not shown; "
        "ask for less (filters, fewer fields, a smaller page)]"
    )


def _shrink(value: Any, items: int, chars: int, notes: list[str], path: str) -> Any:
    if isinstance(value, dict):
        return {k: _shrink(v, items, chars, notes, f"{path}/{k}") for k, v in value.items()}
    if isinstance(value, list):
        kept = [_shrink(v, items, chars, notes, f"{path}/{i}") for i, v in enumerate(value[:items])]
        if len(value) > items:
            notes.append(f"{path or '/'}: showing {items} of {len(value)} items")
        return kept
    if isinstance(value, str) and len(value) > chars:
        notes.append(f"{path or '/'}: text cut to {chars} of {len(value)} characters")
        return value[:chars] + "…"
    return value


def _note(notes: list[str]) -> str:
    if not notes:
        return ""
    shown = "; ".join(notes[:5]) + (f"; and {len(notes) - 5} more cuts" if len(notes) > 5 else "")
    return f"\n[result trimmed to fit: {shown}. Narrow the query to see the rest.]"
