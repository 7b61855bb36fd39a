"""The `tools:` list of a copilot's configuration, as typed objects.

Each entry names one source of tools by its key: `python`, `openapi`, `mcp`,
`connector`, or a tool-source plugin's key (see docs/tools.md for the format and
examples, sources.py for how an entry is parsed). Secrets are written only as
`${env:NAME}` references; they are resolved when the tools are loaded, held as
`SecretStr`, and never logged. A literal secret in the file is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator

from pilothouse.tools.errors import ToolConfigError
from pilothouse.tools.identifiers import GroundedMode
from pilothouse.util.yaml_words import yaml_words

ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
SECRET_KEYS = frozenset({"token", "password", "value", "client_secret", "api_key", "key"})


def _no_credentials(value: str) -> str:
    """Refuse `scheme://user:password@host` (and `scheme://token@host`): credentials in
    a URL end up in logs, traces and error messages. The message never repeats them."""
    if "://" in value:
        try:
            netloc = urlsplit(value).netloc
        except ValueError:
            return value  # not a URL we can read: the client reports it, without this check
        if "@" in netloc:
            raise ValueError(
                "a URL may not carry credentials (user:password@ or token@ before the "
                "host); put them in `auth:` or `headers:` as ${env:NAME}"
            )
    return value


UrlWithoutCredentials = Annotated[str, AfterValidator(_no_credentials)]
"""A URL (or a file path) that carries no `user:password@`; for tool-source plugins too."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- auth ------------------------------------------------------------------------


class BearerAuth(_Model):
    type: Literal["bearer"]
    token: SecretStr


class BasicAuthConfig(_Model):
    type: Literal["basic"]
    username: str
    password: SecretStr


class ApiKeyAuth(_Model):
    type: Literal["api_key"]
    value: SecretStr
    name: str | None = Field(
        default=None, description="header/query/cookie name; defaults to the document's"
    )
    location: Literal["header", "query", "cookie"] | None = Field(default=None, alias="in")
    prefix: str = ""


class OAuth2ClientCredentialsAuth(_Model):
    type: Literal["oauth2_client_credentials"]
    client_id: str
    client_secret: SecretStr
    token_url: UrlWithoutCredentials | None = Field(
        default=None, description="defaults to the OpenAPI document's clientCredentials flow"
    )
    scopes: list[str] = Field(default_factory=list)
    audience: str | None = None
    client_auth: Literal["body", "basic"] = "body"


class KeyTokenAuth(_Model):
    """Trello: an API key and a user token."""

    type: Literal["key_token"]
    key: SecretStr
    token: SecretStr


AuthConfig = Annotated[
    BearerAuth | BasicAuthConfig | ApiKeyAuth | OAuth2ClientCredentialsAuth | KeyTokenAuth,
    Field(discriminator="type"),
]


# --- entries -----------------------------------------------------------------------


Mode = Annotated[GroundedMode, yaml_words(on="strict")]


class SourceEntry(_Model):
    """The options every `tools:` entry has; each source's entry model extends it."""

    prefix: str = Field(default="", description="put before every tool name of this entry")
    only: list[str] | None = Field(
        default=None, description="expose only these tools (names before the prefix)"
    )
    approval: dict[str, bool] = Field(
        default_factory=dict,
        description="tool name (or '*') -> requires approval; overrides the defaults",
    )
    bindings: dict[str, Any] = Field(
        default_factory=dict, description="parameters hidden from the model, set here"
    )
    grounded: Mode | dict[str, Mode] | None = Field(
        default=None,
        description="how identifying arguments (ids, emails, keys) are checked against "
        "what the user said before a call runs: strict (the default: a call with a value "
        "nobody gave never runs), warn or off; one mode, or tool name (or '*') -> mode",
    )

    allow_network: list[str] = Field(
        default_factory=list,
        description="private hosts/networks these tools may reach (on-premise services)",
    )
    timeout_s: float = 30.0
    max_response_bytes: int = 5_000_000
    result_budget: int = Field(default=16_000, description="characters of result the model sees")


class PythonEntry(SourceEntry):
    python: str = Field(description="'package.module', 'package.module:function' or 'file.py'")
    functions: list[str] = Field(default_factory=list)

    def location(self) -> tuple[str | None, str | None, list[str]]:
        """(module, file, function names)."""
        target = self.python
        functions = list(self.functions)
        if target.endswith(".py") or "/" in target:
            return None, target, functions
        if ":" in target:
            module, func = target.split(":", 1)
            return module, None, [*functions, func]
        return target, None, functions


class OpenAPIEntry(SourceEntry):
    openapi: UrlWithoutCredentials = Field(
        description="URL or file (relative to the copilot folder)"
    )
    base_url: UrlWithoutCredentials | None = None
    tags: list[str] = Field(default_factory=list)
    operations: list[str] = Field(default_factory=list)
    auth: AuthConfig | None = None


class StdioServer(_Model):
    command: str
    args: list[str] = Field(default_factory=list)
    env: dict[str, SecretStr] = Field(default_factory=dict)
    cwd: str | None = None


class MCPEntry(SourceEntry):
    mcp: UrlWithoutCredentials | StdioServer = Field(
        description="a streamable-HTTP URL, or {command, args}"
    )
    allow_tools: list[str] | None = Field(
        default=None, description="the MCP tools this copilot may use; all when omitted"
    )
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    read_only_tools: list[str] = Field(
        default_factory=list, description="tools to treat as read-only (no approval)"
    )

    @field_validator("mcp", mode="before")
    @classmethod
    def _mcp_shape(cls, value: Any) -> Any:
        if isinstance(value, list):
            raise ValueError("write the stdio server as {command: ..., args: [...]}")
        return value


class ConnectorEntry(SourceEntry):
    connector: str = Field(description="an installed connector: jira, servicenow, trello, ...")
    base_url: UrlWithoutCredentials
    auth: AuthConfig | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("connector")
    @classmethod
    def _installed(cls, value: str) -> str:
        # The connector family lives with the connectors; imported here, not at the top,
        # because it imports this module.
        from pilothouse.tools.connectors.registry import CONNECTORS

        if value not in CONNECTORS:
            raise ValueError(str(CONNECTORS.unknown(value)))
        return value


def resolve_references(
    value: Any, environ: Mapping[str, str], where: str, path: tuple[str, ...] = ()
) -> Any:
    """`value` with `${env:NAME}` references replaced, refusing literal secrets (under
    `auth`, `headers`, `env`); references in `bindings` become `SecretStr`."""
    if isinstance(value, dict):
        return {k: resolve_references(v, environ, where, (*path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_references(v, environ, where, (*path, str(i))) for i, v in enumerate(value)]
    field = path[-1] if path else ""
    is_secret = ("auth" in path[:-1] and field in SECRET_KEYS) or (
        len(path) >= 2 and path[-2] in ("headers", "env")
    )
    if is_secret and isinstance(value, str | int) and not ENV_REF.fullmatch(str(value)):
        raise ToolConfigError(
            f"{where}: {'.'.join(path)} holds a literal secret; put it in an environment "
            "variable and write ${env:NAME}"
        )
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise ToolConfigError(
                f"{where}: {'.'.join(path)} refers to the environment variable {name}, "
                "which is not set"
            )
        return environ[name]

    replaced = ENV_REF.sub(substitute, value)
    if path and path[0] == "bindings" and ENV_REF.search(value):
        return SecretStr(replaced)
    return replaced
