"""Readers for the front-matter fields the generations share: connections, options
and the template (properties: `property_fields`; tools and bindings: `tool_fields`).
Every reader validates as it goes (`FieldReader`) and raises `PromptyError` naming the
file, line and field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import SecretStr

from .definition import (
    ConnectionSpec,
    Generation,
    ModelOptions,
    TemplateFormat,
    TemplateSpec,
    is_secret_key,
)
from .document import FieldPath, Locator
from .errors import PromptyError

_FORMATS: dict[str, TemplateFormat] = {
    "jinja2": "jinja2",
    "jinja": "jinja2",
    "mustache": "mustache",
}
_REFUSED_FORMATS = {
    "nunjucks": "Nunjucks (the TypeScript runtime's engine) has no well-kept Python "
    "implementation, so Pilothouse does not render it; its syntax is almost all "
    "Jinja2's: write `template: jinja2` and check the messages with `pilothouse run "
    "FILE --render`",
    "handlebars": "Handlebars has no well-kept Python implementation; write the template "
    "as mustache (`template: mustache`, the same {{name}} tags) or jinja2",
}


class FieldReader:
    """Validation helpers that raise errors naming the file, line and field."""

    def __init__(
        self,
        locator: Locator,
        generation: Generation,
        from_env: frozenset[FieldPath] = frozenset(),
    ) -> None:
        self.locator = locator
        self.generation = generation
        self.from_env = from_env
        """Paths whose text came from `${env:}`: numbers and booleans may be read from it."""

    def _env_text(self, value: Any, path: FieldPath) -> Any:
        """`value`, parsed as YAML when it is text that came from an `${env:}` reference
        (`temperature: ${env:TEMPERATURE:0.2}` is the number 0.2)."""
        if isinstance(value, str) and tuple(path) in self.from_env:
            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                return value
            if isinstance(parsed, bool | int | float):
                return parsed
        return value

    def fail(self, path: FieldPath, message: str) -> PromptyError:
        return self.locator.error(path, message)

    def mapping(self, value: Any, path: FieldPath) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected a mapping, found {describe(value)}")
        return {str(k): v for k, v in value.items()}

    def string(self, value: Any, path: FieldPath, default: str | None = None) -> str | None:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(path, f"expected text, found {describe(value)}")
        return str(value)

    def text(self, value: Any, path: FieldPath) -> str:
        return self.string(value, path, "") or ""

    def number(self, value: Any, path: FieldPath) -> float | None:
        value = self._env_text(value, path)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"expected a number, found {describe(value)}")
        return value

    def integer(self, value: Any, path: FieldPath) -> int | None:
        value = self._env_text(value, path)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected a whole number, found {describe(value)}")
        return value

    def boolean(self, value: Any, path: FieldPath, default: bool = False) -> bool:
        value = self._env_text(value, path)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, found {describe(value)}")
        return value

    def strings(self, value: Any, path: FieldPath) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(path, f"expected a list of text values, found {describe(value)}")
        return tuple(value)


def describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {value!r}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def option_fields(options: ModelOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in ModelOptions.__dataclass_fields__}


def read_options(
    ctx: FieldReader,
    raw: dict[str, Any],
    path: FieldPath,
    names: Mapping[str, str],
    *,
    passthrough: bool,
) -> ModelOptions:
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in raw.items():
        here = (*path, key)
        target = names.get(key)
        if target is None:
            if passthrough:
                extra[key] = value
            continue
        if target in ("temperature", "top_p", "frequency_penalty", "presence_penalty"):
            values[target] = ctx.number(value, here)
        elif target in ("max_output_tokens", "top_k", "seed"):
            values[target] = ctx.integer(value, here)
        elif target == "stop":
            values[target] = ctx.strings(value, here)
        elif target == "allow_multiple_tool_calls":
            values[target] = None if value is None else ctx.boolean(value, here)
        else:
            values[target] = value
    return ModelOptions(**values, extra=extra)


def read_connection(
    ctx: FieldReader, cfg: dict[str, Any], path: FieldPath, kind: str | None
) -> ConnectionSpec:
    endpoint: str | None = None
    api_key: SecretStr | None = None
    name: str | None = None
    options: dict[str, Any] = {}
    for key, value in cfg.items():
        here = (*path, key)
        if key in ("endpoint", "azure_endpoint", "base_url", "baseUrl", "url"):
            endpoint = ctx.string(value, here)
        elif key in ("api_key", "apiKey", "key"):
            text = ctx.string(value, here)
            api_key = SecretStr(text) if text is not None else None
        elif key in ("connection", "name", "reference"):
            name = ctx.string(value, here)
        elif is_secret_key(key) and isinstance(value, str):
            options[key] = SecretStr(value)
        else:
            options[key] = value
    return ConnectionSpec(
        kind=kind,
        endpoint=endpoint,
        api_key=api_key,
        name=name,
        options=options,
        keep_unset_env=ctx.generation == "A",
        path=ctx.locator.path,
        line=ctx.locator.line_of(path),
    )


def read_template(
    ctx: FieldReader, raw: Any, path: FieldPath, default_format: TemplateFormat
) -> TemplateSpec:
    fmt: Any = None
    parser: Any = None
    strict = False
    options: dict[str, Any] = {}
    fmt_path: FieldPath = path
    if isinstance(raw, str):
        fmt = raw
    elif raw is not None:
        spec = ctx.mapping(raw, path)
        fmt = spec.get("format", spec.get("type"))
        fmt_path = (*path, "format" if "format" in spec else "type")
        parser = spec.get("parser")
        strict = ctx.boolean(spec.get("strict"), (*path, "strict"))
        options = ctx.mapping(spec.get("options"), (*path, "options"))
    if isinstance(fmt, Mapping):
        fmt_path = (*fmt_path, "kind")
        fmt = fmt.get("kind")
    if isinstance(parser, Mapping):
        parser = parser.get("kind")
    fmt_name = ctx.string(fmt, fmt_path) or default_format
    normalised = _FORMATS.get(fmt_name.lower())
    refused = _REFUSED_FORMATS.get(fmt_name.lower())
    if refused is not None:
        raise ctx.fail(fmt_path, f"the template format {fmt_name!r} is not supported: {refused}")
    if normalised is None:
        raise ctx.fail(
            fmt_path,
            f"the template format {fmt_name!r} is not supported; use jinja2 or mustache",
        )
    parser_name = (ctx.string(parser, (*path, "parser")) or "prompty").lower()
    if parser_name != "prompty":
        raise ctx.fail(
            (*path, "parser"),
            f"the template parser {parser_name!r} is not supported; use prompty",
        )
    return TemplateSpec(format=normalised, parser=parser_name, strict=strict, options=options)
