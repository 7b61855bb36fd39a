"""The tool interface every source of tools implements.

A `Tool` has a name, a description, a JSON Schema for its arguments, and an async
`call`. `read_only` says it changes nothing; `requires_approval` says a person must
approve each call (the default for anything that writes). `bindings` are arguments
the model never sees: they are removed from the schema the model gets (`spec()`)
and injected at call time, overriding whatever the model sent (credentials, a
tenant id, a fixed project key). `grounded` says how a copilot checks the values of
identifying parameters before a call runs (tools/identifiers.py): strict (the
default), warn or off. Keywords `x-pilothouse-*` in the schema are for Pilothouse and
never reach the model.

`call` never raises for things the model can fix or should hear about: wrong
arguments and `ToolError`s come back as an error `ToolResult` whose text says what
was wrong, so a run goes on and the model can correct itself.
"""

from __future__ import annotations

import copy
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError
from pydantic import SecretStr

from pilothouse.tools.errors import ToolConfigError, ToolError
from pilothouse.tools.identifiers import GROUNDED_MODES, GroundedMode
from pilothouse.tools.results import DEFAULT_RESULT_BUDGET, ToolResult, render
from pilothouse.types import ToolSpec

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""Tool names every model provider accepts."""


def safe_tool_name(raw: str) -> str:
    """`raw` made into a valid tool name (letters, digits, _ and -; at most 64)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", raw).strip("_") or "tool"
    return name[:64]


class Tool(ABC):
    """One action a model can take."""

    def __init__(
        self,
        *,
        name: str,
        description: str,
        parameters: Mapping[str, Any] | None = None,
        read_only: bool = False,
        requires_approval: bool | None = None,
        bindings: Mapping[str, Any] | None = None,
        result_budget: int = DEFAULT_RESULT_BUDGET,
        grounded: GroundedMode = "strict",
    ):
        if not NAME_PATTERN.match(name):
            raise ToolConfigError(
                f"tool name {name!r} is not allowed: use 1-64 letters, digits, '_' or '-'"
            )
        self.name = name
        self.description = description
        self.parameters: dict[str, Any] = dict(parameters or {"type": "object", "properties": {}})
        self.read_only = read_only
        self.requires_approval = (not read_only) if requires_approval is None else requires_approval
        self.bindings: dict[str, Any] = dict(bindings or {})
        self.result_budget = result_budget
        self.grounded: GroundedMode = _grounded_mode(grounded, name)
        self._validator: jsonschema.protocols.Validator | None = None

    # --- what the model sees ------------------------------------------------------

    def spec(self) -> ToolSpec:
        """The tool as the model sees it: bound parameters removed."""
        schema = _without_private_keywords(copy.deepcopy(self.parameters))
        props = schema.get("properties")
        if self.bindings and isinstance(props, dict):
            for key in self.bindings:
                props.pop(key, None)
            if isinstance(schema.get("required"), list):
                schema["required"] = [r for r in schema["required"] if r not in self.bindings]
        return ToolSpec(name=self.name, description=self.description, parameters=schema)

    def with_options(
        self,
        *,
        name: str | None = None,
        requires_approval: bool | None = None,
        bindings: Mapping[str, Any] | None = None,
        grounded: GroundedMode | None = None,
    ) -> Tool:
        """A copy with another name, approval setting, grounded mode or extra bindings."""
        clone = copy.copy(self)
        if grounded is not None:
            clone.grounded = _grounded_mode(grounded, self.name)
        clone.bindings = dict(self.bindings)
        if name is not None:
            if not NAME_PATTERN.match(name):
                raise ToolConfigError(f"tool name {name!r} is not allowed")
            clone.name = name
        if requires_approval is not None:
            clone.requires_approval = requires_approval
        if bindings:
            props = self.parameters.get("properties", {})
            unknown = [k for k in bindings if k not in props]
            if unknown:
                raise ToolConfigError(
                    f"tool {self.name}: cannot bind {', '.join(unknown)}: not a parameter "
                    f"(parameters: {', '.join(props) or 'none'})"
                )
            clone.bindings.update(bindings)
        return clone

    # --- calling ------------------------------------------------------------------

    async def call(self, arguments: Mapping[str, Any] | None) -> ToolResult:
        """Validate the model's arguments, inject bindings, run, and render."""
        if arguments is not None and not isinstance(arguments, Mapping):
            return ToolResult.error(
                f"arguments for tool {self.name} must be a JSON object, got "
                f"{type(arguments).__name__}"
            )
        merged = dict(arguments or {})
        merged.update(
            {
                k: v.get_secret_value() if isinstance(v, SecretStr) else v
                for k, v in self.bindings.items()
            }
        )
        problems = self.validate(merged)
        if problems:
            listed = "\n".join(f"- {p}" for p in problems)
            return ToolResult.error(
                f"the arguments for tool {self.name} do not match its parameters:\n{listed}\n"
                "Call the tool again with arguments that follow its JSON Schema."
            )
        try:
            output = await self.invoke(merged)
        except ToolError as exc:
            logger.info("tool %s failed: %s", self.name, type(exc).__name__)
            return ToolResult.error(str(exc))
        except Exception as exc:  # a bug in a tool must not end the copilot's run
            logger.error("tool %s raised unexpectedly", self.name, exc_info=True)
            return ToolResult.error(
                f"tool {self.name} failed unexpectedly ({type(exc).__name__}); the error was "
                "logged. Try another approach or tell the user."
            )
        if isinstance(output, ToolResult):
            return output
        return ToolResult(content=render(output, self.result_budget), data=output)

    def validate(self, arguments: Mapping[str, Any]) -> list[str]:
        """Problems with `arguments` against the schema (bound values never shown)."""
        if self._validator is None:
            cls = jsonschema.validators.validator_for(
                self.parameters, jsonschema.Draft202012Validator
            )
            self._validator = cls(self.parameters)
        problems = []
        errors = sorted(self._validator.iter_errors(arguments), key=lambda e: list(e.path))
        for error in errors[:10]:
            problems.append(self._describe(error))
        return problems

    def _describe(self, error: ValidationError) -> str:
        path = "/".join(str(p) for p in error.absolute_path)
        if path and str(error.absolute_path[0]) in self.bindings:
            return f"{path}: the configured (bound) value is invalid; fix the tool configuration"
        where = f"'{path}'" if path else "arguments"
        if error.validator == "required":
            return f"{where}: {error.message}"
        if error.validator == "additionalProperties":
            return f"{where}: {error.message} (remove them)"
        message = error.message if len(error.message) < 300 else error.message[:300] + "…"
        return f"{where}: {message}"

    @abstractmethod
    async def invoke(self, arguments: dict[str, Any]) -> Any:
        """Run with validated arguments (bindings included). Return a ToolResult, a
        string, or a JSON-able value; raise `ToolError` for failures the model should
        read."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release what the tool holds (connections, processes)."""

    def __repr__(self) -> str:
        flags = "read-only" if self.read_only else "writes"
        return f"<{type(self).__name__} {self.name} ({flags})>"


def _grounded_mode(value: str, name: str) -> GroundedMode:
    if value not in GROUNDED_MODES:
        raise ToolConfigError(
            f"tool {name}: grounded must be one of {', '.join(GROUNDED_MODES)}, not {value!r}"
        )
    return value


def _without_private_keywords(schema: Any) -> Any:
    """The schema without `x-pilothouse-*` keywords (at any depth), in place."""
    if isinstance(schema, dict):
        for key in [k for k in schema if isinstance(k, str) and k.startswith("x-pilothouse-")]:
            del schema[key]
        for value in schema.values():
            _without_private_keywords(value)
    elif isinstance(schema, list):
        for value in schema:
            _without_private_keywords(value)
    return schema
