"""JSON Schema for Gemini: tool parameters and output schemas are sent as JSON Schema
(`parametersJsonSchema`, `responseJsonSchema`), lightly normalised here so `required`
and `enum` survive exactly instead of going through Gemini's older OpenAPI subset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pilothouse.errors import BadRequestError
from pilothouse.types import ToolSpec

_METADATA_KEYS = frozenset({"$schema", "$id", "$comment", "examples", "deprecated"})
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_VALUES = ("items", "additionalProperties", "not")


def gemini_json_schema(schema: Mapping[str, Any], *, ordered: bool = False) -> dict[str, Any]:
    """A JSON Schema rewritten into the subset Gemini reads, keeping every constraint it
    can express: `const` becomes a one-value `enum`, `oneOf` becomes `anyOf`,
    `definitions` becomes `$defs` (with `$ref`s rewritten), `allOf` of plain object
    schemas is merged into its parent (so their `required` and `enum` survive), and
    metadata-only keywords (`$schema`, `$id`, `examples`, ...) are dropped. With
    `ordered`, objects get Gemini's `propertyOrdering` so JSON answers keep the
    schema's key order."""
    return _convert(dict(schema), ordered)


def tool_parameters(spec: ToolSpec) -> dict[str, Any] | None:
    """`parametersJsonSchema` for a tool, or None for a tool without parameters (Gemini
    documents leaving it unset)."""
    schema = gemini_json_schema(spec.parameters)
    schema.setdefault("type", "object")
    if schema.get("type") != "object":
        raise BadRequestError(
            f"tool {spec.name!r}: parameters must be a JSON Schema of type object, "
            f"got type {schema.get('type')!r}"
        )
    if not schema.get("properties") and set(schema) <= {"type", "properties", "required"}:
        return None
    schema.setdefault("properties", {})
    return schema


def _convert(node: dict[str, Any], ordered: bool) -> dict[str, Any]:
    node = _merge_all_of(node)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _METADATA_KEYS:
            continue
        if key == "const":
            if "enum" not in node:
                out["enum"] = [value]
        elif key == "oneOf" and "anyOf" not in node:
            out["anyOf"] = [_sub(v, ordered) for v in value]
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            name = "$defs" if key == "definitions" else key
            out[name] = {k: _sub(v, ordered) for k, v in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_sub(v, ordered) for v in value]
        elif key in _SCHEMA_VALUES:
            out[key] = (
                [_sub(v, ordered) for v in value]
                if isinstance(value, list)
                else _sub(value, ordered)
            )
        elif key == "$ref" and isinstance(value, str):
            out[key] = value.replace("#/definitions/", "#/$defs/", 1)
        else:
            out[key] = value
    properties = out.get("properties")
    if ordered and isinstance(properties, dict) and properties and "propertyOrdering" not in out:
        out["propertyOrdering"] = list(properties)
    return out


def _sub(value: Any, ordered: bool) -> Any:
    return _convert(value, ordered) if isinstance(value, dict) else value


def _merge_all_of(node: dict[str, Any]) -> dict[str, Any]:
    """Fold `allOf` members into the parent when they are plain (no `$ref`) schemas."""
    members = node.get("allOf")
    if not isinstance(members, list) or not all(
        isinstance(m, dict) and "$ref" not in m for m in members
    ):
        return node
    merged = {k: v for k, v in node.items() if k != "allOf"}
    for member in members:
        member = _merge_all_of(member)
        for key, value in member.items():
            if key == "properties" and isinstance(value, dict):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
            else:
                merged.setdefault(key, value)
    return merged
