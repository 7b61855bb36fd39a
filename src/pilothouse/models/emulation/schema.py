"""The JSON schema an emulated answer is constrained to: `{"answer": ...}` and/or
`{"tool_calls": [...]}`, with one `anyOf` branch per tool so each tool's arguments
follow its own schema."""

from __future__ import annotations

from typing import Any

from pilothouse.types import ToolSpec

ENVELOPE_NAME = "tool_envelope"


def _call_schema(tool: ToolSpec) -> dict[str, Any]:
    parameters = tool.parameters or {"type": "object", "properties": {}}
    return {
        "type": "object",
        "properties": {"name": {"const": tool.name}, "arguments": parameters},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def envelope_schema(
    tools: tuple[ToolSpec, ...],
    *,
    allow_answer: bool,
    allow_calls: bool,
    max_calls: int | None,
    answer_schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON schema of an emulated answer: `{"answer": ...}` and/or
    `{"tool_calls": [...]}` with one branch per tool."""
    branches: list[dict[str, Any]] = []
    if allow_calls and tools:
        calls: dict[str, Any] = {
            "type": "array",
            "items": _call_schema(tools[0])
            if len(tools) == 1
            else {"anyOf": [_call_schema(t) for t in tools]},
            "minItems": 1,
        }
        if max_calls is not None:
            calls["maxItems"] = max_calls
        branches.append(
            {
                "type": "object",
                "properties": {"tool_calls": calls},
                "required": ["tool_calls"],
                "additionalProperties": False,
            }
        )
    if allow_answer:  # branch order does not steer the decoder; the instructions do
        branches.append(
            {
                "type": "object",
                "properties": {"answer": answer_schema or {"type": "string"}},
                "required": ["answer"],
                "additionalProperties": False,
            }
        )
    if len(branches) == 1:
        return branches[0]
    return {"anyOf": branches}
