"""JSON Schema for a Python function's parameters, from its type hints and docstring.

Types become JSON Schema through pydantic (so `Literal`, `Enum`, dataclasses,
pydantic models, `list[int]`, `X | None`, `Annotated[int, Field(ge=1)]` all work);
descriptions come from the docstring (Google, NumPy, reST or Epydoc style) or from
`Annotated[..., Field(description=...)]`. Unknown arguments are refused
(`additionalProperties: false`) so a model's typo is reported, not ignored.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docstring_parser
import pydantic
from pydantic import ConfigDict, Field

from pilothouse.tools.errors import ToolConfigError

_SUBSCHEMA_KEYS = ("items", "additionalProperties", "not", "contains", "propertyNames")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")


@dataclass(frozen=True, slots=True)
class FunctionSchema:
    description: str
    parameters: dict[str, Any]
    model: type[pydantic.BaseModel]
    """Converts validated JSON arguments into the Python values the function takes."""


def function_schema(func: Callable[..., Any], *, description: str | None = None) -> FunctionSchema:
    """The description and parameter schema of `func`."""
    where = getattr(func, "__qualname__", repr(func))
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:
        raise ToolConfigError(f"python tool {where}: cannot read its type hints: {exc}") from None
    doc = docstring_parser.parse(inspect.getdoc(func) or "")
    param_docs = {p.arg_name: (p.description or "").strip() for p in doc.params}
    fields: dict[str, Any] = {}
    for name, param in inspect.signature(func).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolConfigError(
                f"python tool {where}: *{name} cannot be described to a model; use named parameters"
            )
        if name not in hints:
            raise ToolConfigError(
                f"python tool {where}: parameter {name!r} has no type hint; add one so the "
                "model knows what to send"
            )
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (hints[name], Field(default, description=param_docs.get(name) or None))
    try:
        model = pydantic.create_model(
            f"{getattr(func, '__name__', 'tool')}_arguments",
            __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=False),
            **fields,
        )
        schema = model.model_json_schema()
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError) as exc:
        raise ToolConfigError(
            f"python tool {where}: a parameter type cannot be expressed as JSON Schema: {exc}"
        ) from None
    strip_titles(schema)
    schema.setdefault("properties", {})
    schema["additionalProperties"] = False
    text = description
    if text is None:
        text = "\n\n".join(p for p in (doc.short_description, doc.long_description) if p)
    return FunctionSchema(description=text.strip(), parameters=schema, model=model)


def strip_titles(schema: Any) -> None:
    """Remove pydantic's generated `title`s (noise for a model), in place; a property
    that is itself named `title` is kept."""
    if not isinstance(schema, dict):
        return
    schema.pop("title", None)
    for key in _SUBSCHEMA_KEYS:
        strip_titles(schema.get(key))
    for key in _SUBSCHEMA_LISTS:
        for sub in schema.get(key) or ():
            strip_titles(sub)
    for key in _SUBSCHEMA_MAPS:
        sub_map = schema.get(key)
        if isinstance(sub_map, dict):
            for sub in sub_map.values():
                strip_titles(sub)
