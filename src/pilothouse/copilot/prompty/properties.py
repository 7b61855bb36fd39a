"""Input and output properties of a prompt, their JSON Schema (for structured output
and tool parameters), and whether a value is of a property's kind."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PROPERTY_KINDS = (
    "string",
    "integer",
    "float",
    "boolean",
    "array",
    "object",
    "thread",
    "image",
    "file",
    "audio",
)
"""Neutral kinds of an input or output property (the v2 names)."""

_JSON_TYPES = {
    "string": "string",
    "integer": "integer",
    "float": "number",
    "boolean": "boolean",
    "array": "array",
    "object": "object",
    "image": "string",
    "file": "string",
    "audio": "string",
}


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""The default of a property that declares none."""


@dataclass(frozen=True)
class PropertySpec:
    """An input or output property."""

    name: str
    kind: str = "string"
    description: str = ""
    required: bool = False
    default: Any = MISSING
    enum: tuple[Any, ...] | None = None
    example: Any = MISSING
    items: PropertySpec | None = None
    """For `array`: the kind of the elements."""
    properties: tuple[PropertySpec, ...] = ()
    """For `object`: its properties."""

    @property
    def has_default(self) -> bool:
        return self.default is not MISSING

    def json_schema(self) -> dict[str, Any]:
        """This property as JSON Schema (used for structured output and tool parameters)."""
        schema: dict[str, Any] = {"type": _JSON_TYPES.get(self.kind, "string")}
        if self.description:
            schema["description"] = self.description
        if self.enum is not None:
            schema["enum"] = list(self.enum)
        if self.kind == "array":
            schema["items"] = self.items.json_schema() if self.items else {}
        if self.kind == "object" and self.properties:
            schema.update(object_schema(self.properties))
        return schema


def object_schema(properties: tuple[PropertySpec, ...], *, strict: bool = False) -> dict[str, Any]:
    """A JSON Schema object with `properties`. `strict` (structured output) makes every
    property required and forbids others, as strict JSON-schema modes require."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {p.name: p.json_schema() for p in properties},
    }
    required = [p.name for p in properties if strict or p.required]
    if required:
        schema["required"] = required
    if strict:
        schema["additionalProperties"] = False
    return schema


def is_sequence(value: object) -> bool:
    """A list-like value that is not text."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


_KIND_CHECKS: dict[str, Callable[[object], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": is_sequence,
    "object": lambda v: isinstance(v, Mapping),
    "thread": is_sequence,
    "image": lambda v: isinstance(v, str | Mapping),
    "file": lambda v: isinstance(v, str | Mapping),
    "audio": lambda v: isinstance(v, str | Mapping),
}

_KIND_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "float": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "thread": "a list of messages",
    "image": "an image URL or path",
    "file": "a file URL or path",
    "audio": "an audio URL or path",
}


def kind_accepts(kind: str, value: object) -> bool:
    """Whether `value` is of the property kind `kind` (an unknown kind takes anything)."""
    check = _KIND_CHECKS.get(kind)
    return check is None or check(value)


def kind_words(kind: str) -> str:
    """The kind as an error message says what a value must be ("a whole number")."""
    return _KIND_WORDS.get(kind, kind)
