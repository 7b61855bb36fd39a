"""What the copilot asked the user for: the slot of a request waiting for its id.

When a request needs an identifier nobody gave ("Can you check my ticket?"), the turn
asks for it and the conversation remembers the asked-for slot: the tool (or tools)
and the parameter. The next user turn that supplies a value of that kind ("It is
HD-1001.") resumes the request: only those tools are offered, and the value is the
user's own (grounded); a turn that changes the subject drops the slot. Both
conversation stores keep it (`Conversation.asked`, `ConversationStore.set_asked`).

`supplies` decides whether a message gives a value for a slot: a token that looks like
an identifier (three digits or more, or an @ for an email; not a quantity, a price or
a model number: "120 pounds", "the 2400 model", tools/identifiers.py
`looks_like_a_quantity`; nor a bare year: "my ticket from 2024", `looks_like_a_year`)
and, where the parameter says more, fits it: its `pattern`,
an email (its name or format), or the letter prefix of an example it shows ("e.g.
SO-1001": `SO-1002` or `1002`, not `HD-1002`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pilothouse.tools.base import Tool
from pilothouse.tools.identifiers import example_values, looks_like_a_quantity, looks_like_a_year

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]*[A-Za-z0-9]|[0-9]")
_PREFIX = re.compile(r"^([A-Za-z]+)[-_ #]?\d")


@dataclass(frozen=True, slots=True)
class AskedFor:
    """One asked-for slot: the value of `parameter` for a call of `tool`."""

    tool: str
    parameter: str

    def to_dict(self) -> dict[str, str]:
        return {"tool": self.tool, "parameter": self.parameter}


def dump_asked(asked: Sequence[AskedFor]) -> str | None:
    """The stored form (a JSON list; None when nothing was asked for)."""
    return json.dumps([a.to_dict() for a in asked]) if asked else None


def load_asked(text: str | None) -> tuple[AskedFor, ...]:
    """The stored form read back; ValueError when it is not one."""
    if not text:
        return ()
    data = json.loads(text)
    if not isinstance(data, list) or not all(
        isinstance(d, dict)
        and isinstance(d.get("tool"), str)
        and isinstance(d.get("parameter"), str)
        for d in data
    ):
        raise ValueError("its asked-for slots are not a list of {tool, parameter}")
    return tuple(AskedFor(d["tool"], d["parameter"]) for d in data)


def supplies(message: str, tool: Tool, parameter: str) -> bool:
    """Whether `message` gives a value for `parameter` of `tool` (see the module doc)."""
    return bool(values(message, tool, parameter))


def values(message: str, tool: Tool, parameter: str) -> list[str]:
    """The values `message` gives for `parameter` of `tool`, in its order, each once
    ("Please check HD-1001 and HD-1003": both); never a quantity or a bare year (see
    the module doc), whether for a slot asked for or an id given unasked
    (copilot/given_ids.py)."""
    properties = tool.parameters.get("properties")
    schema = properties.get(parameter) if isinstance(properties, Mapping) else None
    schema = schema if isinstance(schema, Mapping) else {}
    email = "email" in parameter.lower()
    found = [
        token.group(0)
        for token in _TOKEN.finditer(message)
        if _fits(token.group(0), schema, email)
        and not looks_like_a_quantity(message, token.start(), token.end())
        and not looks_like_a_year(token.group(0))
    ]
    return list(dict.fromkeys(found))


def _fits(token: str, schema: Mapping[str, Any], email: bool) -> bool:
    if sum(c.isdigit() for c in token) < 3 and "@" not in token:
        return False
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            return re.search(pattern, token) is not None
        except re.error:
            return True
    if email or str(schema.get("format", "")).lower() in {"email", "idn-email"}:
        return "@" in token
    prefixes = {m.group(1).lower() for m in map(_PREFIX.match, example_values(schema)) if m}
    own = _PREFIX.match(token)
    if prefixes and own is not None:
        return own.group(1).lower() in prefixes
    return True


def resumed_by(message: str, asked: Sequence[AskedFor], tools: Sequence[Tool]) -> tuple[Tool, ...]:
    """The tools of `asked` that `message` gives a value for, in the copilot's order;
    empty when it gives none (the subject changed: the slot is dropped)."""
    by_name = {tool.name: tool for tool in tools}
    found: list[Tool] = []
    for slot in asked:
        tool = by_name.get(slot.tool)
        if tool is not None and tool not in found and supplies(message, tool, slot.parameter):
            found.append(tool)
    return tuple(t for t in tools if t in found)
