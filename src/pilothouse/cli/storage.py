"""`pilothouse storage`: apply the storage backend's migrations, and copy a data
directory's SQLite state into PostgreSQL (docs/deployment.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pilothouse.cli.common import EXIT_FAILED, EXIT_USAGE, fail, out, print_json, settings
from pilothouse.errors import ConfigError, PilothouseError

if TYPE_CHECKING:
    from pilothouse.config import Settings

app = typer.Typer(
    help="Where state is kept: migrations, and moving a data directory to PostgreSQL.",
    no_args_is_help=True,
)

DATABASE_URL = "PILOTHOUSE_DATABASE_URL"
"""`pilothouse.config.DATABASE_URL_ENV`, named here for the help text without importing
the settings on `--help` (tests/cli/test_startup.py checks that they agree)."""

KINDS = (
    "conversations",
    "paused_runs",
    "traces",
    "keys",
    "rate_limits",
    "copilot_folders",
    "evals",
    "promotions",
    "responses",
)


@app.command("migrate")
def migrate_command(
    as_json: Annotated[bool, typer.Option("--json", help="print the versions as JSON")] = False,
) -> None:
    """Apply every pending migration of the configured storage ([storage] url or
    PILOTHOUSE_DATABASE_URL; else the data directory's SQLite files). Safe to run
    again, and from several machines at once."""
    from pilothouse.storage.backends import backend_for, open_store, shared

    config = settings()
    try:
        backend = backend_for(config)
        if not shared(config):
            config.home.mkdir(parents=True, exist_ok=True)
        for kind in KINDS:
            _close(open_store(config, kind))
        for name in _knowledge_bases(config):
            _close(open_store(config, "knowledge", config.home / "knowledge" / f"{name}.sqlite3"))
        versions = _versions(config)
    except PilothouseError as exc:
        fail(exc, EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILED)
    if as_json:
        print_json({"backend": backend.name, "components": versions})
        return
    for component, version in sorted(versions.items()):
        out.print(f"{component:<24} version {version}", markup=False)
    out.print(f"{backend.name}: {len(versions)} components up to date", markup=False)


@app.command("copy")
def copy_command(
    source: Annotated[str, typer.Option("--from", help="sqlite:PATH, the data directory to copy")],
    target: Annotated[
        str | None,
        typer.Option(
            "--to",
            help=f"postgresql://user@host:port/database (default: {DATABASE_URL} or [storage] url)",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Copy a data directory's conversations, paused runs, traces, API keys, eval runs,
    promotions, stored responses and knowledge bases into an empty PostgreSQL database,
    then compare row counts and checksums of every table on both sides (exit 1 on any
    difference)."""
    from pilothouse.storage.backends import close_database
    from pilothouse.storage.copy import copy_data_directory

    if not source.startswith("sqlite:"):
        fail(ConfigError(f"--from {source!r}: write sqlite:PATH (a data directory)"), EXIT_USAGE)
    home = Path(source.removeprefix("sqlite:")).expanduser()
    if home.name == "pilothouse.db":
        home = home.parent
    if not (home / "pilothouse.db").is_file() and not (home / "knowledge").is_dir():
        fail(ConfigError(f"--from {source}: no pilothouse.db or knowledge/ in {home}"), EXIT_USAGE)
    from pilothouse.config import DATABASE_URL_ENV, Settings

    config = settings()
    environ = dict(config.environ)
    if target is not None:
        environ[DATABASE_URL_ENV] = target
    to = Settings.from_sources(home=config.home, environ=environ)
    try:
        report = copy_data_directory(home, to, progress=_progress(as_json))
    except PilothouseError as exc:
        fail(exc, EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILED)
    finally:
        close_database(to)
    if as_json:
        print_json(
            {
                "ok": report.ok,
                "tables": [
                    {
                        "table": t.name,
                        "rows": t.rows,
                        "copied": t.target_rows,
                        "checksum": t.checksum,
                        "matches": t.ok,
                    }
                    for t in report.tables
                ],
                "not_copied": report.not_copied,
            }
        )
    else:
        for t in report.tables:
            state = (
                "ok" if t.ok else f"DIFFERS (target {t.target_rows} rows, {t.target_checksum[:12]})"
            )
            out.print(f"{t.name:<48} {t.rows:>8} rows  {t.checksum[:12]}  {state}", markup=False)
        for line in report.not_copied:
            out.print(f"not copied: {line}", markup=False)
        rows = sum(t.rows for t in report.tables)
        verdict = "identical" if report.ok else "NOT identical"
        out.print(f"{len(report.tables)} tables, {rows} rows copied: {verdict}", markup=False)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


def _versions(config: Settings) -> dict[str, int]:
    from pilothouse.storage.backends import database_for, shared

    if shared(config):
        with database_for(config).connection() as conn:
            rows = conn.execute(
                "SELECT component, MAX(version) FROM schema_migrations GROUP BY component"
            ).fetchall()
    else:
        import sqlite3

        conn = sqlite3.connect(config.database_path)
        try:
            rows = conn.execute(
                "SELECT component, MAX(version) FROM schema_migrations GROUP BY component"
            ).fetchall()
        finally:
            conn.close()
    return {str(c): int(v) for c, v in rows}


def _knowledge_bases(config: Settings) -> list[str]:
    """The knowledge bases of a shared database (each SQLite one migrates when opened)."""
    from pilothouse.storage.backends import database_for, shared

    if not shared(config):
        return []
    with database_for(config).connection() as conn:
        exists = conn.execute("SELECT to_regclass('knowledge_bases') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return []
        return [str(r[0]) for r in conn.execute("SELECT name FROM knowledge_bases ORDER BY name")]


def _close(store: Any) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        close()


def _progress(quiet: bool) -> Any:
    if quiet:
        return None
    return lambda line: out.print(f"copying {line}", markup=False, style="dim")
