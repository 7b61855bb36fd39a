"""Reading the properties of a Prompty front matter (inputs and outputs, of every
generation) into `PropertySpec`s: lists or mappings, kinds and their aliases, the
scalar shorthand, enums, items and nested properties. Errors name the file, line and
field (`FieldReader`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .document import FieldPath
from .fields import FieldReader, describe
from .properties import MISSING, PropertySpec

_KIND_ALIASES = {
    "string": "string",
    "str": "string",
    "text": "string",
    "integer": "integer",
    "int": "integer",
    "float": "float",
    "double": "float",
    "number": "float",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "object": "object",
    "dict": "object",
    "thread": "thread",
    "image": "image",
    "file": "file",
    "file_path": "file",
    "audio": "audio",
}


def _shorthand_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return "string"


def read_properties(
    ctx: FieldReader,
    raw: Any,
    path: FieldPath,
    *,
    output: bool = False,
    shorthand: bool = False,
    required_if_no_default: bool = False,
    depth: int = 0,
) -> tuple[PropertySpec, ...]:
    if raw is None:
        return ()
    entries: list[tuple[str | None, Any, FieldPath]] = []
    if isinstance(raw, Mapping):
        entries = [(str(k), v, (*path, str(k))) for k, v in raw.items()]
    elif isinstance(raw, list):
        entries = [(None, v, (*path, i)) for i, v in enumerate(raw)]
    else:
        raise ctx.fail(path, f"expected a list or mapping of properties, found {describe(raw)}")
    out: list[PropertySpec] = []
    seen: set[str] = set()
    for key, value, here in entries:
        prop = read_property(
            ctx,
            key,
            value,
            here,
            output=output,
            shorthand=shorthand,
            required_if_no_default=required_if_no_default,
            depth=depth,
        )
        if prop.name in seen:
            raise ctx.fail(here, f"the property {prop.name!r} is declared twice")
        seen.add(prop.name)
        out.append(prop)
    return tuple(out)


def read_property(
    ctx: FieldReader,
    key: str | None,
    value: Any,
    path: FieldPath,
    *,
    output: bool,
    shorthand: bool,
    required_if_no_default: bool,
    depth: int,
) -> PropertySpec:
    if depth > 16:
        raise ctx.fail(path, "properties are nested more than 16 levels deep")
    if not isinstance(value, Mapping):
        if shorthand and key is not None:
            # Scalar shorthand (v2, and the 2024 runtime's A/B files): `firstName: Jane`
            # is an input defaulting to Jane, of the value's kind; `name:` alone (no
            # value) declares an input without a default.
            if value is None:
                return PropertySpec(name=key, kind="string", required=required_if_no_default)
            return PropertySpec(name=key, kind=_shorthand_kind(value), default=value)
        raise ctx.fail(
            path,
            f"expected a property (a mapping with a type and default), found {describe(value)}",
        )
    spec = {str(k): v for k, v in value.items()}
    name = key if key is not None else ctx.string(spec.get("name"), (*path, "name"))
    if not name:
        raise ctx.fail(path, "a property in a list needs a name")
    kind_key = "kind" if "kind" in spec else "type"
    given = next(
        (spec[k] for k in ("default", "sample", "example") if spec.get(k) is not None), None
    )  # no kind written: the kind of the value it shows (the 2024 runtime's rule)
    kind_raw = ctx.string(spec.get(kind_key), (*path, kind_key)) or (
        _shorthand_kind(given) if given is not None else "string"
    )
    kind = _KIND_ALIASES.get(kind_raw.lower())
    if kind is None:
        raise ctx.fail(
            (*path, kind_key),
            f"unknown kind {kind_raw!r}; use one of string, integer, float, boolean, array, "
            f"object, thread, image, file, audio",
        )
    if output and kind == "thread":
        raise ctx.fail((*path, kind_key), "a thread cannot be an output")
    enum_key = "enumValues" if "enumValues" in spec else "enum"
    enum_raw = spec.get(enum_key)
    enum: tuple[Any, ...] | None = None
    if enum_raw is not None:
        if not isinstance(enum_raw, list):
            raise ctx.fail((*path, enum_key), f"expected a list, found {describe(enum_raw)}")
        enum = tuple(enum_raw)
    default = spec.get("default", MISSING)
    if "required" in spec:
        required = ctx.boolean(spec["required"], (*path, "required"))
    else:
        required = required_if_no_default and default is MISSING
    items = None
    if "items" in spec and spec["items"] is not None:
        items = read_property(
            ctx,
            "items",
            spec["items"],
            (*path, "items"),
            output=output,
            shorthand=False,
            required_if_no_default=False,
            depth=depth + 1,
        )
    nested: tuple[PropertySpec, ...] = ()
    if spec.get("properties") is not None:
        nested = read_properties(
            ctx, spec["properties"], (*path, "properties"), output=output, depth=depth + 1
        )
    return PropertySpec(
        name=name,
        kind=kind,
        description=ctx.text(spec.get("description"), (*path, "description")),
        required=required,
        default=default,
        enum=enum,
        example=spec.get("example", spec.get("sample", MISSING)),
        items=items,
        properties=nested,
    )
