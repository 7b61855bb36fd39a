"""Who hosts a model: provider entries as data.

A provider is a wire protocol plus a base URL, a key variable and an auth style.
OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp server, LM Studio, Groq, Together, ...
are all the OpenAI protocol with different entries. Entries are plugins of the family
`pilothouse.providers` (the built-ins below are declared in pyproject.toml; a package
adds its own hosts the same way). Settings (`[providers.NAME]` in config.toml) override
any field and can add new names with `preset = "openai"` or `protocol = "..."`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import SecretStr

from pilothouse.config import Settings
from pilothouse.errors import ConfigError
from pilothouse.models.profiles import check_overrides
from pilothouse.plugins import Registry
from pilothouse.storage.secrets import redactor_for

AuthStyle = Literal["bearer", "api-key", "x-api-key", "x-goog-api-key", "none"]
# OpenAI protocol: the request field for the output token limit. OpenAI and Azure
# use `max_completion_tokens` (required by reasoning models); compatible servers
# (vLLM, Ollama, llama.cpp, ...) document `max_tokens`.
MaxTokensField = Literal["max_tokens", "max_completion_tokens"]
Prefill = Literal["", "native", "continue_final_message"]


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    name: str
    protocol: str
    """A plugin of the family `pilothouse.protocols`: openai, anthropic, gemini, local, ..."""
    base_url: str = ""
    key_env: str | None = None
    key_required: bool = True
    auth: AuthStyle = "bearer"
    api_version: str | None = None
    flavor: Literal["standard", "azure"] = "standard"
    timeout_s: float = 120.0
    headers: tuple[tuple[str, str], ...] = ()
    max_tokens_field: MaxTokensField = "max_tokens"
    prefill: Prefill = ""
    """How the host continues a request's final assistant message (a broken stream's
    continuation): "native" (it does so by itself), "continue_final_message" (vLLM's
    request parameters), "" (it cannot)."""
    profile: Mapping[str, Any] = field(default_factory=dict)
    """Model profile fields that hold for every model of this host (profiles.py), e.g.
    `{"native_tools": False}` for a server without a tool-call parser."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A provider entry with settings applied: everything an adapter needs to connect."""

    provider: str
    protocol: str
    base_url: str
    api_key: SecretStr | None
    auth: AuthStyle
    api_version: str | None
    flavor: Literal["standard", "azure"]
    timeout_s: float
    headers: dict[str, str] = field(default_factory=dict)
    max_tokens_field: MaxTokensField = "max_tokens"
    prefill: Prefill = ""
    profile: Mapping[str, Any] = field(default_factory=dict)
    """Profile overrides for every model of this host: the entry's, then config.toml's."""

    def auth_headers(self) -> dict[str, str]:
        """Headers that carry the key. Only adapters put these on the wire."""
        if self.api_key is None or self.auth == "none":
            return {}
        key = self.api_key.get_secret_value()
        if self.auth == "bearer":
            return {"Authorization": f"Bearer {key}"}
        return {self.auth: key}


OPENAI = ProviderEntry(
    "openai",
    "openai",
    "https://api.openai.com/v1",
    "OPENAI_API_KEY",
    max_tokens_field="max_completion_tokens",
)
AZURE = ProviderEntry(
    "azure",
    "openai",
    "",  # https://<resource>.openai.azure.com, from AZURE_OPENAI_ENDPOINT
    "AZURE_OPENAI_API_KEY",
    auth="api-key",
    api_version="2024-10-21",
    flavor="azure",
    max_tokens_field="max_completion_tokens",
)
ANTHROPIC = ProviderEntry(
    "anthropic",
    "anthropic",
    "https://api.anthropic.com",
    "ANTHROPIC_API_KEY",
    auth="x-api-key",
    api_version="2023-06-01",
    prefill="native",
)
GEMINI = ProviderEntry(
    "gemini",
    "gemini",
    "https://generativelanguage.googleapis.com/v1beta",
    "GEMINI_API_KEY",
    auth="x-goog-api-key",
)
OLLAMA = ProviderEntry("ollama", "openai", "http://127.0.0.1:11434/v1", None, False, "none")
VLLM = ProviderEntry(
    "vllm",
    "openai",
    "http://127.0.0.1:8000/v1",
    "VLLM_API_KEY",
    False,
    prefill="continue_final_message",
)
LLAMACPP = ProviderEntry(
    "llamacpp", "openai", "http://127.0.0.1:8080/v1", "LLAMACPP_API_KEY", False, prefill="native"
)
LMSTUDIO = ProviderEntry("lmstudio", "openai", "http://127.0.0.1:1234/v1", None, False, "none")
GROQ = ProviderEntry("groq", "openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY")
TOGETHER = ProviderEntry("together", "openai", "https://api.together.xyz/v1", "TOGETHER_API_KEY")
OPENROUTER = ProviderEntry(
    "openrouter", "openai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"
)
MISTRAL = ProviderEntry("mistral", "openai", "https://api.mistral.ai/v1", "MISTRAL_API_KEY")
LOCAL = ProviderEntry("local", "local", key_required=False, auth="none")


def as_provider(name: str, obj: object) -> ProviderEntry:
    """An entry point's object as the provider `name` (its own `name` is replaced)."""
    if not isinstance(obj, ProviderEntry):
        raise TypeError(f"expected a ProviderEntry, got {type(obj).__name__}")
    return obj if obj.name == name else replace(obj, name=name)


PROVIDERS: Registry[ProviderEntry] = Registry("providers", check=as_provider, kind="provider")
"""Provider hosts by name (`ollama`, `azure`, ...), from `pilothouse.providers` entry points."""

# Environment variables that supply a base URL where the provider has no fixed one.
BASE_URL_ENV = {"azure": "AZURE_OPENAI_ENDPOINT", "openai": "OPENAI_BASE_URL"}
API_VERSION_ENV = {"azure": "OPENAI_API_VERSION"}


def provider_entry(name: str, settings: Settings) -> ProviderEntry:
    """The installed entry for `name`, or one declared in settings (`[providers.NAME]`
    with a `preset` to copy, or just a `protocol`)."""
    declared = settings.providers.get(name)
    installed = PROVIDERS.find(name)
    if installed is not None:
        return installed
    if declared is None:
        raise PROVIDERS.unknown(
            name,
            alternative=f'declare [providers.{name}] with preset = "openai" '
            f"in {settings.config_path}",
        )
    if declared.protocol is not None and declared.preset is None:
        return ProviderEntry(name, declared.protocol, key_required=False)
    preset = PROVIDERS.find(declared.preset or "openai")
    if preset is None:
        known = ", ".join(PROVIDERS.names())
        raise ConfigError(
            f"[providers.{name}] preset {declared.preset!r} is not a known provider "
            f"(known: {known}) in {settings.config_path}"
        )
    protocol = declared.protocol or preset.protocol
    return replace(preset, name=name, protocol=protocol, key_env=None, key_required=False)


def resolve_endpoint(name: str, settings: Settings) -> Endpoint:
    entry = provider_entry(name, settings)
    overrides = settings.provider(name)
    base_url = (
        overrides.base_url or settings.environ.get(BASE_URL_ENV.get(name, ""), "") or entry.base_url
    )
    api_version = (
        overrides.api_version
        or settings.environ.get(API_VERSION_ENV.get(name, ""), "")
        or entry.api_version
    )
    api_key = settings.api_key(name, entry.key_env)
    if api_key is not None:  # masked wherever it might be echoed back (storage/secrets.py)
        redactor_for(settings).register([api_key.get_secret_value()])
    return Endpoint(
        provider=name,
        protocol=entry.protocol,
        base_url=base_url.rstrip("/"),
        api_key=api_key,
        auth=entry.auth,
        api_version=api_version,
        flavor=entry.flavor,
        timeout_s=overrides.timeout_s or entry.timeout_s,
        headers={**dict(entry.headers), **overrides.headers},
        max_tokens_field=entry.max_tokens_field,
        prefill=entry.prefill,
        profile={
            **check_overrides(entry.profile, f"provider {name!r}"),
            **check_overrides(overrides.profile, f"[providers.{name}] profile"),
        },
    )
