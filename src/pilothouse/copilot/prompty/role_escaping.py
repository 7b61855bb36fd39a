"""Generation A's escaping of role markers in input values (as Prompt flow does): a
line of input text that reads as a role marker (`user:`) cannot start a message."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

_ESCAPE = re.compile(
    r"^(?P<lead>[ \t]*#?[ \t]*)(?P<role>system|user|assistant|developer|function|tool)"
    r"(?=[ \t]*(?:\[[^\]\n]*\])?[ \t]*:[ \t]*\r?$)",
    re.IGNORECASE | re.MULTILINE,
)


def escape_roles(value: Any, table: dict[str, str]) -> Any:
    """Generation A's escaping (as Prompt flow does): in input text, the role word of a
    line that reads as a role marker is swapped for a random token, and swapped back
    after parsing. The nonce already keeps such lines from splitting messages; this
    keeps the A behaviour too."""
    if isinstance(value, str):

        def swap(match: re.Match[str]) -> str:
            role = match["role"]
            token = next((t for t, r in table.items() if r == role), None)
            if token is None:
                token = f"PILOTHOUSEROLE{secrets.token_hex(8)}"
                table[token] = role
            return match["lead"] + token

        return _ESCAPE.sub(swap, value)
    if isinstance(value, Mapping):
        return {k: escape_roles(v, table) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [escape_roles(v, table) for v in value]
    return value


def unescape_roles(text: str, table: Mapping[str, str]) -> str:
    """The role words `escape_roles` swapped out, back in `text`."""
    for token, role in table.items():
        text = text.replace(token, role)
    return text
