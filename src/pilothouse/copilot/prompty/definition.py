"""The one typed shape every Prompty generation is normalised into.

Whatever generation a file was written in (A: Prompt flow, B: the intermediate schema,
C: the v2 draft), loading it gives a `PromptDefinition` with neutral names: a model
(id, provider, API, connection, options such as `max_output_tokens`), inputs and
outputs as properties, tools, and the template. The copilot runtime reads only this.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeAlias

from pydantic import SecretStr

from pilothouse.types import OutputSchema, ToolSpec

from .errors import PromptyInputError, PromptyReferenceError
from .properties import MISSING, PropertySpec, object_schema
from .references import resolve_env_value

Generation: TypeAlias = Literal["A", "B", "C"]
TemplateFormat: TypeAlias = Literal["jinja2", "mustache"]

# --- model --------------------------------------------------------------------------


def is_secret_key(name: str) -> bool:
    """Whether a connection setting holds a secret (`apiKey`, `client_secret`, ...)."""
    flat = name.replace("-", "").replace("_", "").lower()
    return flat.endswith("key") or any(w in flat for w in ("secret", "password", "token"))


@dataclass(frozen=True)
class ConnectionSpec:
    """How to reach the model or a tool's server, as the file wrote it.

    `${env:...}` references in a connection of generations B and C are kept until
    `resolve()` is called, so a copilot that runs on another model can load a file
    whose key is not set on this machine. Secrets are `SecretStr`.
    """

    kind: str | None = None
    """C: `key`, `reference`, `remote`, `anonymous`, `foundry`, `oauth`; A/B: the
    configuration `type` (`azure_openai`, `openai`, ...)."""
    endpoint: str | None = None
    api_key: SecretStr | None = None
    name: str | None = None
    """A named connection kept outside the file (A `connection`, C `reference`)."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Every other setting, under the name the file used (`api_version`, ...)."""
    keep_unset_env: bool = field(default=False, compare=False, repr=False)
    path: Path | None = field(default=None, compare=False, repr=False)
    line: int | None = field(default=None, compare=False, repr=False)

    def resolve(self, environ: Mapping[str, str] | None = None) -> ConnectionSpec:
        """A copy with every `${env:NAME}` / `${env:NAME:default}` replaced. Generation A
        keeps the literal text of an unset variable; B and C raise
        `PromptyReferenceError` naming it."""
        env = os.environ if environ is None else environ

        def one(value: Any, name: str) -> Any:
            if isinstance(value, SecretStr):
                resolved = one(value.get_secret_value(), name)
                return SecretStr(resolved) if isinstance(resolved, str) else resolved
            if isinstance(value, str):
                try:
                    return resolve_env_value(value, env, keep_unset=self.keep_unset_env)
                except PromptyReferenceError as exc:
                    raise PromptyReferenceError(
                        exc.detail, path=self.path, line=self.line, field=f"connection.{name}"
                    ) from None
            if isinstance(value, Mapping):
                return {k: one(v, f"{name}.{k}") for k, v in value.items()}
            if isinstance(value, list):
                return [one(v, f"{name}[{i}]") for i, v in enumerate(value)]
            return value

        return replace(
            self,
            endpoint=one(self.endpoint, "endpoint"),
            api_key=one(self.api_key, "api_key"),
            name=one(self.name, "name"),
            options={k: one(v, k) for k, v in self.options.items()},
        )


Protocol: TypeAlias = Literal["openai_chat", "anthropic", "gemini"]


@dataclass(frozen=True)
class ModelOptions:
    """Sampling and request options under neutral names."""

    temperature: float | None = None
    max_output_tokens: int | None = None
    top_p: float | None = None
    top_k: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    allow_multiple_tool_calls: bool | None = None
    response_format: Any = None
    """Generation A/B `response_format` as written (`{type: json_object}`, ...)."""
    tool_choice: Any = None
    """Generation A/B `tool_choice` as written (`auto`, `none`, a tool, ...)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Provider options passed through as written (A/B unknown parameters, C
    `additionalProperties`)."""

    def request_fields(self) -> dict[str, Any]:
        """The options `pilothouse.types.ModelRequest` has fields for, set ones only."""
        out: dict[str, Any] = {}
        if self.temperature is not None:
            out["temperature"] = self.temperature
        if self.max_output_tokens is not None:
            out["max_output_tokens"] = self.max_output_tokens
        if self.stop:
            out["stop"] = self.stop
        if self.seed is not None:
            out["seed"] = self.seed
        if self.allow_multiple_tool_calls is not None:
            out["parallel_tool_calls"] = self.allow_multiple_tool_calls
        return out

    def provider_options(self, protocol: Protocol) -> dict[str, Any]:
        """The options under one wire protocol's names. Options the protocol lacks are
        dropped silently (the v2 rule): `max_output_tokens` is OpenAI chat
        `max_completion_tokens` and Anthropic `max_tokens`; `stop` is OpenAI `stop` and
        Anthropic `stop_sequences`; `top_k` exists only for Anthropic and Gemini."""
        names: dict[str, str]
        if protocol == "openai_chat":
            names = {
                "temperature": "temperature",
                "max_output_tokens": "max_completion_tokens",
                "top_p": "top_p",
                "frequency_penalty": "frequency_penalty",
                "presence_penalty": "presence_penalty",
                "seed": "seed",
                "stop": "stop",
                "allow_multiple_tool_calls": "parallel_tool_calls",
                "response_format": "response_format",
                "tool_choice": "tool_choice",
            }
        elif protocol == "anthropic":
            names = {
                "temperature": "temperature",
                "max_output_tokens": "max_tokens",
                "top_p": "top_p",
                "top_k": "top_k",
                "stop": "stop_sequences",
            }
        else:
            names = {
                "temperature": "temperature",
                "max_output_tokens": "maxOutputTokens",
                "top_p": "topP",
                "top_k": "topK",
                "frequency_penalty": "frequencyPenalty",
                "presence_penalty": "presencePenalty",
                "seed": "seed",
                "stop": "stopSequences",
            }
        out: dict[str, Any] = {}
        for ours, theirs in names.items():
            value = getattr(self, ours)
            if value is None or value == ():
                continue
            out[theirs] = list(value) if isinstance(value, tuple) else value
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class ModelSpec:
    id: str | None = None
    """The model (A: `azure_deployment` or `model`; B/C: `id`)."""
    provider: str | None = None
    """`openai`, `azure`, `anthropic`, ... (A/B: from the configuration type)."""
    api: str = "chat"
    """`chat` (default), `completion` (A), `embedding`, `image`, `responses` (C)."""
    connection: ConnectionSpec | None = None
    options: ModelOptions = field(default_factory=ModelOptions)
    response: str = "first"
    """Generation A `response`: `first` choice (default) or `all`."""


# --- tools --------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolBinding:
    """A tool parameter hidden from the model and filled at execution time from an input
    of the prompt (`input`) or with a fixed `value`; it overrides what the model sends."""

    parameter: str
    input: str | None = None
    value: Any = MISSING


@dataclass(frozen=True)
class PromptTool:
    name: str
    kind: str = "function"
    """`function`, `mcp`, `openapi`, or another kind kept as written."""
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    """JSON Schema of the arguments (function tools), bound parameters included."""
    strict: bool = False
    bindings: tuple[ToolBinding, ...] = ()
    connection: ConnectionSpec | None = None
    server_name: str | None = None
    """mcp: the server's name."""
    approval_mode: Any = None
    """mcp: when calls need approval, as written (`always`, `never`, or a mapping)."""
    allowed_tools: tuple[str, ...] | None = None
    """mcp: the server's tools this prompt may use (None: all)."""
    specification: Any = None
    """openapi: the document (parsed when given as `${file:...}`) or its URL/path."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Other fields as written (kind-specific)."""

    def spec(self) -> ToolSpec:
        """The tool as the model sees it: bound parameters removed."""
        bound = {b.parameter for b in self.bindings}
        params = dict(self.parameters)
        if bound:
            props = dict(params.get("properties") or {})
            for name in bound:
                props.pop(name, None)
            params["properties"] = props
            if "required" in params:
                params["required"] = [r for r in params["required"] if r not in bound]
        return ToolSpec(self.name, self.description, params)

    def bind_arguments(
        self, arguments: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The arguments to execute with: the model's, with every binding applied on top
        (a bound value always wins over what the model sent)."""
        out = dict(arguments)
        for binding in self.bindings:
            if binding.value is not MISSING:
                out[binding.parameter] = binding.value
            elif binding.input is not None:
                if binding.input not in inputs:
                    raise PromptyInputError(
                        f"tool {self.name!r} binds parameter {binding.parameter!r} to the "
                        f"input {binding.input!r}, which was not given"
                    )
                out[binding.parameter] = inputs[binding.input]
        return out


# --- template and the whole definition ----------------------------------------------


@dataclass(frozen=True)
class TemplateSpec:
    format: TemplateFormat = "jinja2"
    parser: str = "prompty"
    strict: bool = False
    """B/C `template.strict` as written. The nonce defence applies either way."""
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PromptDefinition:
    """A Prompty file, normalised. Equal files give equal definitions whatever their
    formatting."""

    name: str
    generation: Generation
    description: str = ""
    model: ModelSpec = field(default_factory=ModelSpec)
    inputs: tuple[PropertySpec, ...] = ()
    outputs: tuple[PropertySpec, ...] = ()
    tools: tuple[PromptTool, ...] = ()
    template: TemplateSpec = field(default_factory=TemplateSpec)
    body: str = ""
    """The template text (the part after the front matter)."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Authors, tags, version, id, `$schema`, displayName: whatever the file says."""
    sample: Any = None
    """Generation A `sample` inputs (resolved when given as `${file:...}`)."""

    @property
    def output_schema(self) -> dict[str, Any] | None:
        """JSON Schema for structured output; None when the file declares no outputs."""
        if not self.outputs:
            return None
        return object_schema(self.outputs, strict=True)

    def structured_output(self) -> OutputSchema | None:
        """The `OutputSchema` to request when the file declares outputs, else None."""
        schema = self.output_schema
        if schema is None:
            return None
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", self.name).strip("_")[:64] or "output"
        return OutputSchema(schema=schema, name=name, strict=True)

    def tool_specs(self) -> tuple[ToolSpec, ...]:
        """The function tools as the model sees them (bound parameters hidden). MCP and
        OpenAPI tools are expanded into tools by the tools layer, not here."""
        return tuple(t.spec() for t in self.tools if t.kind == "function")

    def input(self, name: str) -> PropertySpec | None:
        return next((p for p in self.inputs if p.name == name), None)

    def tool(self, name: str) -> PromptTool | None:
        return next((t for t in self.tools if t.name == name), None)
