"""The secrets a process knows, gathered in one `Redactor` per `Settings`, so that no
string leaving the process (a log line, a span, a stored row, an HTTP response, a CLI
message) carries one in clear (docs/security.md, "Secrets").

What is registered here, when the redactor is first asked for:
- every provider key of config.toml (`api_key`) and every header of a provider that
  looks secret (`Authorization`, `api-key`, ...);
- every environment variable whose name says it holds a secret (`OPENAI_API_KEY`,
  `JIRA_TOKEN`, `SN_PASSWORD`, `..._SECRET`, `..._CREDENTIALS`, `..._AUTH`), and those a
  provider names with `api_key_env`;
- the provider keys stored with `pilothouse keys set` (keyring or file);
- the password of the shared database's URL (`[storage] url`, PILOTHOUSE_DATABASE_URL);
- the pattern of a Pilothouse API key (`ph-` and 43 URL-safe characters).

What registers itself later, where it is learnt: the key a model adapter resolves
(models/providers.py), the credentials a tool entry reads from `${env:NAME}`
(tools/loader.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from pilothouse.config import Settings
from pilothouse.tracing import Redactor

PILOTHOUSE_KEY_PATTERN = r"ph-(?<![A-Za-z0-9_-]ph-)[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])"
"""A Pilothouse API key (server/keys.py makes them): masked wherever one appears."""

_SECRET_ENV_NAME = re.compile(
    r"(?:^|_)(?:API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS|CREDENTIALS?|AUTH|PAT)(?:_|$)",
    re.IGNORECASE,
)
_NOT_SECRET_ENV = frozenset({"SSH_AUTH_SOCK", "XAUTHORITY", "GPG_AGENT_INFO"})
"""Names that match the pattern but hold paths (the working directory's `PWD` does not
match it at all: masking the current folder everywhere would garble every path)."""


def redactor_for(settings: Settings) -> Redactor:
    """The one redactor of `settings` (and of everything made from them), with the
    configured secrets registered."""
    existing = settings._redactor
    if isinstance(existing, Redactor):
        return existing
    redactor = Redactor()
    redactor.add_secret_patterns([PILOTHOUSE_KEY_PATTERN])
    redactor.register(configured_secrets(settings))
    settings._redactor = redactor
    return redactor


def process_redactor(environ: Mapping[str, str]) -> Redactor:
    """A redactor for a whole process (the command line), before or without settings:
    the Pilothouse key pattern and the secret-looking environment. `share` attaches it
    to each `Settings` the process loads."""
    redactor = Redactor()
    redactor.add_secret_patterns([PILOTHOUSE_KEY_PATTERN])
    redactor.register(secret_environment_values(environ))
    return redactor


def share(settings: Settings, redactor: Redactor) -> Settings:
    """Make `redactor` the one of `settings` (registering what they configure), so a
    process that loads settings more than once keeps one set of secrets."""
    redactor.register(configured_secrets(settings))
    settings._redactor = redactor
    return settings


def configured_secrets(settings: Settings) -> list[str]:
    """The secret values `settings` hold or point at (see the module docstring)."""
    probe = Redactor()  # its key patterns say which header names are secret
    values: list[str] = list(secret_environment_values(settings.environ))
    for name, provider in settings.providers.items():
        if provider.api_key is not None:
            values.append(provider.api_key.get_secret_value())
        if provider.api_key_env:
            values.append(settings.environ.get(provider.api_key_env, ""))
        values += [v for k, v in provider.headers.items() if probe.is_secret_key(k)]
        values += [_bearer_token(v) for k, v in provider.headers.items() if probe.is_secret_key(k)]
        stored = settings._stored_key(name) if settings._stored_key is not None else None
        if stored is not None:
            values.append(stored.get_secret_value())
    values += _stored_provider_keys(settings)
    if settings.storage_url is not None:  # the shared database's password
        values.append(url_password(settings.storage_url) or "")
    return values


def secret_environment_values(environ: Mapping[str, str]) -> Iterable[str]:
    """Values of environment variables whose names say they hold a secret."""
    return (
        value
        for name, value in environ.items()
        if _SECRET_ENV_NAME.search(name) and name.upper() not in _NOT_SECRET_ENV
    )


def url_password(url: str) -> str | None:
    """The password a URL carries (`postgresql://user:PASSWORD@host/db`), or None."""
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def _bearer_token(value: str) -> str:
    scheme, _, token = value.partition(" ")
    return token if scheme.lower() in ("bearer", "basic", "token") else ""


def _stored_provider_keys(settings: Settings) -> list[str]:
    """Keys kept by `pilothouse keys set`, for providers config.toml does not name."""
    if settings._stored_key is None:
        return []
    from pilothouse.storage.provider_keys import ProviderKeyStore

    try:
        stored = ProviderKeyStore(settings.home).stored()
    except Exception:  # an unreadable index: the adapters register what they resolve
        return []
    keys = (settings._stored_key(entry.provider) for entry in stored)
    return [key.get_secret_value() for key in keys if key is not None]
