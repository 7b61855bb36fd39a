"""A choice the user did not make takes the tool's default.

A parameter with a fixed set of values and a default (the helpdesk's `create_ticket`:
`priority`, one of critical, high, medium or low, medium by default) is a choice the
tool's author made for the user unless the user makes another. The 0.5B, decoding the
arguments step under the tool's schema, wrote `priority: critical` for "My monitor keeps
flickering ... It only affects me" (issue 20, docs/local-model.md "Upkeep after the
eighth round"): the enum's first value and the description's first word, not anything
the user said. Whoever approves the call reads it as the user's, and a critical ticket
pages someone.

So when the arguments step's reply is read, a value of such a parameter that the user
did not name in the conversation (the value's words, whole, in any of their messages,
any case: "make it high priority", "next day" for `next_day`) is the parameter's default
(`defaulted`). The model still chooses where the user named a value, and always for a
parameter without a default (the schema makes it choose). Free text is not a choice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any


def defaulted(
    arguments: Mapping[str, Any], parameters: Mapping[str, Any], said: Iterable[str]
) -> dict[str, Any]:
    """`arguments` with each value of an enum parameter of `parameters` (a JSON Schema)
    that has a default and that `said` (what the user wrote) does not name replaced by
    that default (see the module doc)."""
    properties = parameters.get("properties")
    if not isinstance(properties, Mapping):
        return dict(arguments)
    words = " ".join(_words(text) for text in said)
    left = dict(arguments)
    for name, value in arguments.items():
        schema = properties.get(name)
        if not isinstance(schema, Mapping) or "default" not in schema:
            continue
        values = schema.get("enum")
        if not isinstance(values, list) or value not in values or value == schema["default"]:
            continue
        if f" {_words(str(value))} " not in f" {words} ":
            left[name] = schema["default"]
    return left


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))
