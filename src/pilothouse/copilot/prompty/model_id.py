"""A Prompty's `model:` as a Pilothouse model id (`openai:gpt-4o`, `azure:gpt-35-turbo`).

Used where the file's own model answers (`pilothouse run FILE.prompty` without `-m`,
`run_prompty(path)`); a copilot's model comes from copilot.yaml. The provider is the
file's (`provider:`, `connection.type`, `configuration.type`), or, when it names none,
told from the model's name (gpt-*/o1-*/o3-*/o4-* OpenAI, claude-* Anthropic,
gemini-* Gemini). Providers Pilothouse has no adapter for (serverless, foundry,
snowflake_cortex, ...) are refused with the file, the line and what to do instead.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from .errors import PromptyError
from .loader import Prompty

_ALIASES = {
    "azure_openai": "azure",
    "azureopenai": "azure",
    "azure": "azure",
    "openai": "openai",
    "anthropic": "anthropic",
    "claude": "anthropic",
    "gemini": "gemini",
    "google": "gemini",
    "google_genai": "gemini",
}
_BY_NAME = (
    (re.compile(r"^(gpt-|o[1-9](-|$)|chatgpt-|text-embedding-)", re.I), "openai"),
    (re.compile(r"^claude", re.I), "anthropic"),
    (re.compile(r"^gemini", re.I), "gemini"),
)


def prompty_model_id(prompty: Prompty, providers: Collection[str]) -> str | None:
    """The Pilothouse id of the model `prompty` names; None when it names none (the
    caller's default model answers). `providers`: the provider names this installation
    knows (`PROVIDERS.names()`)."""
    model = prompty.definition.model
    if not model.id:
        return None
    locator = prompty.document.locator
    where = _provider_field(prompty)
    if model.provider is None:
        head, sep, _ = model.id.partition(":")
        if sep and head in providers:
            return model.id  # already a Pilothouse id
        for pattern, provider in _BY_NAME:
            if pattern.match(model.id):
                return f"{provider}:{model.id}"
        raise locator.error(
            ("model",),
            f"the model {model.id!r} names no provider; write `provider:` in the file "
            f"(openai, azure, anthropic, gemini, ollama, ...) or choose the model with "
            f"-m provider:model",
        )
    name = model.provider.strip().lower()
    provider = _ALIASES.get(name, name)
    if provider not in providers:
        raise PromptyError(
            f"the provider {model.provider!r} has no Pilothouse adapter; choose the model "
            f"with -m (for instance -m openai:{model.id}, or any id `pilothouse models` "
            f"lists), or add the host as an OpenAI-compatible provider in config.toml",
            path=prompty.path,
            line=locator.line_of(where),
            field=".".join(str(p) for p in where),
        )
    return f"{provider}:{model.id}"


def _provider_field(prompty: Prompty) -> tuple[str, ...]:
    model = prompty.document.front_matter.get("model")
    if isinstance(model, dict):
        if "provider" in model:
            return ("model", "provider")
        for section, key in (("connection", "type"), ("configuration", "type")):
            inner = model.get(section)
            if isinstance(inner, dict) and key in inner:
                return ("model", section, key)
    return ("model",)
