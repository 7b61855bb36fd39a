"""Turn a model id (`provider:model`) into a `Model`.

Protocol adapters are plugins of the family `pilothouse.protocols` (the built-ins are
declared in pyproject.toml), imported only when first used, so a cloud-only user never
loads the local runtime and vice versa. A package adds a protocol with an entry point
(see docs/plugins.md); `register_protocol` adds one in-process.
"""

from __future__ import annotations

import importlib
from typing import Protocol as TypingProtocol

from pilothouse.config import Settings
from pilothouse.errors import ConfigError
from pilothouse.models.base import Model
from pilothouse.models.emulation.model import EmulatedToolsModel
from pilothouse.models.providers import PROVIDERS, Endpoint, resolve_endpoint
from pilothouse.plugins import Registry
from pilothouse.util.suggest import model_id_hint

# Models listed by `pilothouse models`, besides any configured ones.
KNOWN_MODELS: tuple[str, ...] = (
    "local:qwen2.5-coder-1.5b",
    "local:qwen2.5-coder-0.5b",
    "openai:gpt-4.1-mini",
    "openai:gpt-4.1",
    "openai:gpt-4o-mini",
    "azure:gpt-4.1-mini",
    "anthropic:claude-sonnet-4-5",
    "anthropic:claude-haiku-4-5",
    "gemini:gemini-2.5-flash",
    "gemini:gemini-2.5-pro",
    "ollama:llama3.2",
    "vllm:Qwen/Qwen2.5-7B-Instruct",
)


class ModelFactory(TypingProtocol):
    def __call__(
        self, model_id: str, name: str, endpoint: Endpoint, settings: Settings
    ) -> Model: ...


def as_factory(name: str, obj: object) -> ModelFactory:
    """An entry point's object as a protocol: a `Model` class (or any factory) called as
    `factory(model_id, name, endpoint, settings)`."""
    if not callable(obj):
        raise TypeError(
            f"expected a Model class or a factory (model_id, name, endpoint, settings) -> "
            f"Model, got {type(obj).__name__}"
        )
    return obj


PROTOCOLS: Registry[ModelFactory] = Registry("protocols", check=as_factory, kind="protocol")
"""Wire protocols by name (`openai`, `anthropic`, ...), from `pilothouse.protocols`."""


def register_protocol(protocol: str, target: str | ModelFactory) -> None:
    """Add an adapter for `protocol` in this process: a factory, or its dotted path
    `"package.module:ClassName"` (imported now)."""
    if isinstance(target, str):
        module_name, _, attribute = target.partition(":")
        target = getattr(importlib.import_module(module_name), attribute)
    PROTOCOLS.register(protocol, target)  # type: ignore[arg-type]


def split_model_id(model_id: str) -> tuple[str, str]:
    provider, sep, name = model_id.partition(":")
    if not sep or not provider or not name:
        raise ConfigError(
            f"model id {model_id!r} must look like provider:model, "
            "for example local:qwen2.5-coder-1.5b or openai:gpt-4.1-mini"
            + model_id_hint(model_id, PROVIDERS.names())
        )
    return provider, name


def create_model(model_id: str, settings: Settings) -> Model:
    """A model for `model_id`. Missing keys or weights surface when it is called, as
    typed errors a fallback chain can step over.

    A model whose profile says `native_tools = false` gets its tool calls emulated by
    constrained decoding (`EmulatedToolsModel`), whatever hosts it, unless its adapter
    emulates them itself (`emulates_tools`, the embedded runtime)."""
    provider, name = split_model_id(model_id)
    endpoint = resolve_endpoint(provider, settings)
    factory = PROTOCOLS.get(endpoint.protocol)
    model = factory(model_id, name, endpoint, settings)
    if not model.profile.native_tools and not getattr(model, "emulates_tools", False):
        model = EmulatedToolsModel(model)
    return model
