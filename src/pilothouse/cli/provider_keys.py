"""`pilothouse keys set|unset|providers`: the keys Pilothouse uses to call model
providers (OpenAI, Anthropic, ...), kept in the OS keyring or a 0600 file in the data
directory, never in config.toml. Registered in the `keys` group beside the server's
own API keys (`keys create|list|revoke`), under their own heading."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from pilothouse.cli.common import err, fail, out, print_json, settings
from pilothouse.errors import ConfigError, PilothouseError
from pilothouse.util.suggest import did_you_mean

if TYPE_CHECKING:
    from pilothouse.config import Settings

PANEL = "Provider keys (used to call models)"


def _complete_provider(incomplete: str) -> list[str]:
    from pilothouse.models.providers import PROVIDERS

    try:
        names = [*PROVIDERS.names(), *settings().providers]
    except (PilothouseError, typer.Exit):
        names = PROVIDERS.names()
    return [n for n in dict.fromkeys(names) if n.startswith(incomplete)]


ProviderArg = Annotated[
    str,
    typer.Argument(
        help="the provider: openai, anthropic, gemini, azure, groq, ... or one declared "
        "in config.toml",
        autocompletion=_complete_provider,
        show_default=False,
    ),
]


def _check_provider(name: str, config: Settings) -> None:
    from pilothouse.models.providers import PROVIDERS

    known = [*PROVIDERS.names(), *config.providers]
    if name not in known:
        raise ConfigError(
            f"no provider {name!r}{did_you_mean(name, known)}; the providers are: "
            f"{', '.join(sorted(set(known)))}"
        )


def _read_key(provider: str) -> str:
    if sys.stdin.isatty():
        key: str = typer.prompt(f"{provider} key", hide_input=True, err=True)
        return key
    return sys.stdin.readline().strip()  # piped: `pass show openai | pilothouse keys set openai`


def set_key(provider: ProviderArg) -> None:
    """Store a provider's key (asked for, never on the command line; or piped in).

    Kept in the operating system's keyring when there is one, else in
    provider-keys.json in the data directory (only you can read it). A key in
    config.toml or in the provider's environment variable (OPENAI_API_KEY, ...) takes
    precedence over a stored one."""
    from pilothouse.storage.provider_keys import FILE_NAME, ProviderKeyStore

    config = settings()
    try:
        _check_provider(provider, config)
        key = _read_key(provider)
        where = ProviderKeyStore(config.home).set(provider, key)
    except PilothouseError as exc:
        fail(exc)
    if where == "keyring":
        err.print(f"stored {provider}'s key in the system keyring", markup=False)
    else:
        path = config.home / FILE_NAME
        err.print(
            f"warning: no system keyring here; stored {provider}'s key in {path} "
            "(readable by you only). Anyone with your account can read it.",
            markup=False,
        )


def unset_key(provider: ProviderArg) -> None:
    """Forget a stored provider key."""
    from pilothouse.storage.provider_keys import ProviderKeyStore

    config = settings()
    try:
        removed = ProviderKeyStore(config.home).remove(provider)
    except PilothouseError as exc:
        fail(exc)
    if not removed:
        fail(ConfigError(f"no stored key for {provider!r}"))
    err.print(f"removed {provider}'s stored key", markup=False)


def list_providers(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON lines")] = False,
) -> None:
    """Each provider and where its key comes from: config.toml, an environment
    variable, the keyring, the key file, or nowhere (never the key itself)."""
    from pilothouse.models.providers import PROVIDERS, provider_entry
    from pilothouse.storage.provider_keys import FILE_NAME, ProviderKeyStore

    config = settings()
    try:
        stored = {s.provider: s.where for s in ProviderKeyStore(config.home).stored()}
    except PilothouseError as exc:
        fail(exc)
    rows = []
    for name in dict.fromkeys([*PROVIDERS.names(), *config.providers]):
        try:
            entry = provider_entry(name, config)
        except PilothouseError:
            continue
        declared = config.provider(name)
        env_name = declared.api_key_env or entry.key_env
        if declared.api_key is not None:
            source = "config.toml"
        elif env_name and config.environ.get(env_name):
            source = f"${env_name}"
        elif name in stored:
            source = "keyring" if stored[name] == "keyring" else FILE_NAME
        else:
            source = "" if entry.key_required else "not needed"
        rows.append({"provider": name, "key": source or None, "variable": env_name})
    if as_json:
        print_json(rows, lines=True)
        return
    table = Table("provider", "key from", "variable", box=None, pad_edge=False)
    for row in rows:
        table.add_row(row["provider"], row["key"] or "[red]none[/]", row["variable"] or "")
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("set", rich_help_panel=PANEL)(set_key)
    app.command("unset", rich_help_panel=PANEL)(unset_key)
    app.command("providers", rich_help_panel=PANEL)(list_providers)
