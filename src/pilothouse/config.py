"""Settings: one object, built from environment variables and the data directory's
`config.toml`, passed to whoever needs it (no global state).

Keys are held as `SecretStr`, whose repr and str mask the value; only the adapter that
puts a key on the wire calls `get_secret_value()`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator
from pydantic_core import PydanticCustomError

HOME_ENV = "PILOTHOUSE_HOME"
DATABASE_URL_ENV = "PILOTHOUSE_DATABASE_URL"
DEFAULT_MODEL = "local:qwen2.5-coder-1.5b"


def default_home(environ: Mapping[str, str] | None = None) -> Path:
    """The data directory: `$PILOTHOUSE_HOME`, else the per-user data folder."""
    env = os.environ if environ is None else environ
    explicit = env.get(HOME_ENV)
    if explicit:
        return Path(explicit).expanduser().resolve()
    return Path(platformdirs.user_data_dir("pilothouse", appauthor=False))


class ProviderSettings(BaseModel):
    """Overrides for one provider entry (`[providers.NAME]` in config.toml)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(
        default=None, description="name of the environment variable holding the key"
    )
    api_version: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float | None = None
    # Inherit the wire protocol and defaults of a known provider (for a custom name).
    preset: str | None = None
    protocol: str | None = Field(
        default=None,
        description="the wire protocol of a custom name (an installed protocol plugin); "
        "defaults to the preset's",
    )
    profile: dict[str, bool | int | float | str | None] = Field(
        default_factory=dict,
        description="model profile fields for every model of this host, e.g. "
        "{native_tools = false, context_window = 8192}",
    )

    @field_validator("base_url")
    @classmethod
    def _no_credentials_in_url(cls, value: str | None) -> str | None:
        # user:password@ in a URL ends up in logs and messages; the value is not repeated
        if value is not None and "@" in urlsplit(value).netloc:
            raise ValueError(
                "base_url may not carry credentials (user:password@ before the host); "
                "give the key with api_key_env, or a header in headers"
            )
        return value


class LocalSettings(BaseModel):
    """How the embedded runtime runs local GGUF models."""

    model_config = ConfigDict(extra="forbid")

    threads: int = Field(default=0, description="0 means one per physical core")
    context_size: int = 8192
    parallel: int = Field(default=2, description="server slots: requests served at once")
    repack: bool = Field(
        default=False,
        description="repack the weights at load for llama.cpp's interleaved CPU kernels: "
        "faster decoding, slower prompt processing (off: the prompt first)",
    )


class TraceSettings(BaseModel):
    """How long stored runs and their spans are kept (`[traces]` in config.toml)."""

    model_config = ConfigDict(extra="forbid")

    keep_days: float = Field(
        default=30.0,
        description="delete runs that ended more than this many days ago; 0 keeps them forever",
    )

    @field_validator("keep_days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> float:
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None or not math.isfinite(number) or number < 0:
            raise PydanticCustomError(
                "keep_days",
                "must be a number of days, 0 or more (0 keeps traces forever), "
                "e.g. keep_days = 30, not {value}",
                {"value": repr(value)},
            )
        return float(number)


class StorageSettings(BaseModel):
    """`[storage]` in config.toml: where state is kept. No `url` (the default): SQLite
    files in the data directory. `url = "postgresql://user@host/db"`: every kind of
    shared state in that PostgreSQL database (docs/deployment.md); the environment
    variable PILOTHOUSE_DATABASE_URL overrides it."""

    model_config = ConfigDict(extra="forbid")

    url: SecretStr | None = Field(
        default=None,
        description="postgresql://user:password@host:port/database; empty: SQLite in the "
        "data directory",
    )
    pool_size: int = Field(
        default=8, ge=1, le=200, description="connections per pool (a process keeps two)"
    )
    connect_timeout_s: float = Field(
        default=10.0, gt=0, description="how long to wait for the database server"
    )


_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ORIGIN = re.compile(
    r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?$"
)


class ServerSettings(BaseModel):
    """`[server]` in config.toml: HTTP limits, CORS, and what uploaded copilots may
    bring. Every limit and its default is listed in docs/security.md."""

    model_config = ConfigDict(extra="forbid")

    max_body_bytes: int = Field(default=4 * 2**20, ge=1024, description="largest body on /v1")
    max_upload_bytes: int = Field(
        default=64 * 2**20, ge=1024, description="largest body elsewhere (uploads)"
    )
    body_timeout_s: float = Field(
        default=30.0, gt=0, description="a body must arrive within this many seconds"
    )
    max_header_bytes: int = Field(
        default=32 * 1024, ge=1024, description="request line and headers, in bytes (431)"
    )
    max_headers: int = Field(default=100, ge=8, description="header fields per request (431)")
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="a new connection, or a new request on a kept-alive one, must send its "
        "whole head within this many seconds (408)",
    )
    keep_alive_s: float = Field(
        default=5.0, gt=0, description="an idle kept-alive connection is closed after this"
    )
    max_connections: int = Field(
        default=1000, ge=0, description="open connections in all (503 above); 0: no limit"
    )
    max_connections_per_client: int = Field(
        default=100,
        ge=0,
        description="open connections from one client address (429 above); 0: no limit",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="web origins allowed to call the API from a browser (CORS), "
        "e.g. https://studio.example.com; empty: none",
    )
    allow_code_upload: bool = Field(
        default=False,
        description="let copilots uploaded through the API bring Python tools, MCP stdio "
        "commands and other code (as `pilothouse serve --allow-code-upload`)",
    )
    upload_tool_modules: list[str] = Field(
        default_factory=list,
        description="installed Python modules (and their submodules) whose tools uploaded "
        "copilots may use in `python: module` or `module:function` entries",
    )

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not _ORIGIN.match(origin):
                raise PydanticCustomError(
                    "origin",
                    "{origin} is not a web origin: write scheme://host[:port] with no path "
                    "or trailing slash, e.g. https://studio.example.com",
                    {"origin": repr(origin)},
                )
        return value

    @field_validator("upload_tool_modules")
    @classmethod
    def _modules(cls, value: list[str]) -> list[str]:
        for module in value:
            if not _MODULE.match(module):
                raise PydanticCustomError(
                    "module",
                    "{module} is not a Python module name like my_company.tools",
                    {"module": repr(module)},
                )
        return value


class Settings(BaseModel):
    """Everything configurable. Build with `Settings.from_sources`."""

    model_config = ConfigDict(extra="forbid")

    home: Path
    default_model: str = DEFAULT_MODEL
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    local: LocalSettings = Field(default_factory=LocalSettings)
    traces: TraceSettings = Field(default_factory=TraceSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    # The environment keys are read from; kept so tests can pass their own.
    environ: dict[str, str] = Field(default_factory=dict, exclude=True, repr=False)
    # Keys stored with `pilothouse keys set PROVIDER` (keyring or a 0600 file), looked
    # up last; set by storage.load_settings, which knows where they are.
    _stored_key: Callable[[str], SecretStr | None] | None = PrivateAttr(default=None)
    # The redactor of everything these settings make (a tracing.Redactor, typed loosely:
    # config does not import tracing); made on first use by storage.secrets.redactor_for.
    _redactor: object | None = PrivateAttr(default=None)
    # The storage backend's handle (a connection pool), opened once per settings by
    # storage.backends.database_for and shared by every store made from them.
    _database: object | None = PrivateAttr(default=None)

    @classmethod
    def from_sources(
        cls,
        *,
        home: Path,
        file_data: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Combine config.toml data (may be None) with the environment.

        Raises pydantic's ValidationError on bad file data; the caller that read the
        file turns it into a ConfigError naming the file.
        """
        env = dict(os.environ if environ is None else environ)
        data: dict[str, Any] = dict(file_data or {})
        if env.get("PILOTHOUSE_DEFAULT_MODEL"):
            data["default_model"] = env["PILOTHOUSE_DEFAULT_MODEL"]
        return cls(home=home, environ=env, **data)

    def provider(self, name: str) -> ProviderSettings:
        return self.providers.get(name) or ProviderSettings()

    def api_key(self, provider: str, default_env: str | None) -> SecretStr | None:
        """The key for a provider: config.toml's value, else its environment variable,
        else one stored with `pilothouse keys set PROVIDER`."""
        entry = self.provider(provider)
        if entry.api_key is not None:
            return entry.api_key
        env_name = entry.api_key_env or default_env
        if env_name and self.environ.get(env_name):
            return SecretStr(self.environ[env_name])
        return self._stored_key(provider) if self._stored_key is not None else None

    def use_stored_keys(self, lookup: Callable[[str], SecretStr | None]) -> None:
        """Where `api_key` finds keys stored with `pilothouse keys set` (after config.toml
        and the environment)."""
        self._stored_key = lookup

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def database_path(self) -> Path:
        """The SQLite database of the data directory (the default storage)."""
        return self.home / "pilothouse.db"

    @property
    def storage_url(self) -> str | None:
        """Where shared state lives: PILOTHOUSE_DATABASE_URL, else `[storage] url`;
        None for the default (SQLite files in the data directory)."""
        from_env = self.environ.get(DATABASE_URL_ENV, "").strip()
        if from_env:
            return from_env
        return self.storage.url.get_secret_value().strip() or None if self.storage.url else None

    @property
    def config_path(self) -> Path:
        return self.home / "config.toml"
