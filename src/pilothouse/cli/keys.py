"""`pilothouse keys create|list|revoke`: API keys for the server, stored hashed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from pilothouse.cli.common import err, fail, out, settings
from pilothouse.errors import PilothouseError

if TYPE_CHECKING:
    from pilothouse.server.keys import KeyStore

SERVER_PANEL = "Server API keys (clients of pilothouse serve)"
app = typer.Typer(help="API keys for `pilothouse serve` (stored hashed).", no_args_is_help=True)


def _store() -> KeyStore:
    from pilothouse.server.keys import KeyStore

    try:
        return KeyStore.for_settings(settings())
    except PilothouseError as exc:
        fail(exc)


@app.command("create", rich_help_panel=SERVER_PANEL)
def create(
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            "-s",
            help="admin, models, chat:<copilot> or chat:*, approve:<copilot> or approve:*, "
            "copilots:write; repeat for several",
        ),
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="who or what uses the key")] = "",
    rate: Annotated[
        str | None, typer.Option("--rate", help="rate limit, e.g. 60/min, 5/s, 1000/hour")
    ] = None,
) -> None:
    """Create a key; it is printed once and never stored in clear."""
    from pilothouse.server.keys import parse_rate

    with _store() as store:
        try:
            key, record = store.create(name, scope, rate_per_min=parse_rate(rate))
        except PilothouseError as exc:
            fail(exc)
    limit = f", {record.rate_per_min}/min" if record.rate_per_min else ""
    err.print(
        f"created {record.id} ({record.name}; {' '.join(record.scopes)}{limit}). "
        "Store the key now: it cannot be shown again."
    )
    out.print(key, markup=False, highlight=False)


@app.command("list", rich_help_panel=SERVER_PANEL)
def list_keys(
    all_keys: Annotated[bool, typer.Option("--all", help="include revoked keys")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON lines")] = False,
) -> None:
    """The keys (never the keys themselves): id, name, scopes, rate limit, dates."""
    with _store() as store:
        records = store.list(include_revoked=all_keys)
    if as_json:
        for r in records:
            line = {
                "id": r.id,
                "name": r.name,
                "scopes": list(r.scopes),
                "rate_per_min": r.rate_per_min,
                "created_at": r.created_at,
                "revoked_at": r.revoked_at,
            }
            out.print(json.dumps(line), markup=False, highlight=False)
        return
    if not records:
        err.print("no keys yet: pilothouse keys create --scope admin --name me")
        return
    table = Table("id", "name", "scopes", "rate", "created", "revoked")
    for r in records:
        rate = f"{r.rate_per_min}/min" if r.rate_per_min else "-"
        table.add_row(r.id, r.name, " ".join(r.scopes), rate, r.created_at, r.revoked_at or "")
    out.print(table)


@app.command("revoke", rich_help_panel=SERVER_PANEL)
def revoke(
    key: Annotated[str, typer.Argument(help="the key's id (or its name)")],
) -> None:
    """Revoke a key; a running server refuses it from its next request on."""
    with _store() as store:
        try:
            record = store.revoke(key)
        except PilothouseError as exc:
            fail(exc)
    err.print(f"revoked {record.id} ({record.name})")
