"""`pilothouse plugins`: what each plugin family holds and where each plugin came from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from pilothouse.cli.common import out

if TYPE_CHECKING:
    from pilothouse.plugins import PluginInfo, Registry


def families() -> tuple[Registry[Any], ...]:
    """Every family this version of Pilothouse reads, in the order they are listed
    (each registry is imported here: its package is what it extends)."""
    from pilothouse.knowledge.loaders.formats import LOADERS
    from pilothouse.models.providers import PROVIDERS
    from pilothouse.models.readiness import READINESS
    from pilothouse.models.registry import PROTOCOLS
    from pilothouse.pipeline.metrics.registry import METRICS
    from pilothouse.storage.backends import STORAGE
    from pilothouse.tools.connectors.registry import CONNECTORS
    from pilothouse.tools.sources import TOOL_SOURCES

    return (PROTOCOLS, PROVIDERS, READINESS, LOADERS, TOOL_SOURCES, CONNECTORS, METRICS, STORAGE)


def _rows(family: str | None) -> list[PluginInfo]:
    from pilothouse.plugins import GROUP_PREFIX, PluginInfo, declared_groups

    rows: list[PluginInfo] = []
    registries = families()
    known = {registry.group for registry in registries}
    for registry in registries:
        if family in (None, registry.family):
            rows.extend(registry.infos())
    for group in declared_groups():  # entry points for a family Pilothouse lacks
        name = group.removeprefix(GROUP_PREFIX)
        if group not in known and family in (None, name):
            rows.append(
                PluginInfo(
                    name,
                    "*",
                    group,
                    error=f"no family {name!r} in this version of Pilothouse; not used",
                )
            )
    return rows


def plugins_command(
    family: Annotated[
        str | None,
        typer.Argument(help="only this family (protocols, providers, loaders, ...)"),
    ] = None,
) -> None:
    """List the installed plugins of every family, where each came from, and why any
    cannot be used (exit status 1 when one cannot)."""
    rows = _rows(family)
    table = Table(box=None, pad_edge=False)
    for header in ("family", "name", "from", "object", "state"):
        table.add_column(header, overflow="fold")
    for info in rows:
        state = "[green]ok[/]" if info.error is None else f"[red]{escape(info.error)}[/]"
        table.add_row(
            info.family, escape(info.name), escape(info.origin), escape(info.target), state
        )
    out.print(table)
    if not rows:
        out.print(f"no plugins in a family called {family!r}", markup=False)
    if any(info.error is not None for info in rows):
        raise typer.Exit(1)
