"""Input and output properties of a prompt, and their JSON Schema (for structured
output and tool parameters)."""

from __future__ import annotations

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
