"""Connectors as plugins: `Connector` (a curated tool set over one vendor's API) and
`CONNECTORS`, the family `pilothouse.connectors`, which a copilot names in a tools
entry: `connector: jira`.

A connector gets the entry (`base_url`, `options`, `result_budget`), a safe HTTP client
bound to the entry's network allow-list, and the credential built from the entry's
`auth`; it returns its tools. `ApiClient` (base.py) gives it typed errors, bounded
retries on 429/503 and credentials kept out of messages. The built-ins (builtin.py)
are declared in Pilothouse's pyproject.toml like any plugin.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pilothouse.plugins import Registry
from pilothouse.tools.base import Tool
from pilothouse.tools.errors import ToolConfigError
from pilothouse.tools.http import Credential, SafeHttpClient

if TYPE_CHECKING:  # config.py validates connector names against this module
    from pilothouse.tools.config import ConnectorEntry

COMMON_OPTIONS = frozenset({"max_retry_wait_s"})
"""Options every connector takes: `max_retry_wait_s`, the longest Retry-After waited."""

Build = Callable[
    ["ConnectorEntry", SafeHttpClient, Credential | None],
    Sequence[Tool] | Awaitable[Sequence[Tool]],
]


@dataclass(frozen=True, slots=True)
class Connector:
    """`build(entry, client, credential)` returns the tools (sync or async); `options`
    names the keys its `options:` may hold besides `max_retry_wait_s`; `service` names
    the vendor in messages."""

    build: Build
    service: str
    options: frozenset[str] = frozenset()
    description: str = ""


def as_connector(name: str, obj: object) -> Connector:
    if not isinstance(obj, Connector):
        raise TypeError(
            f"expected a pilothouse.tools.connectors.Connector, got {type(obj).__name__}"
        )
    if not callable(obj.build):
        raise TypeError("build must be callable: (entry, client, credential) -> tools")
    return obj


CONNECTORS: Registry[Connector] = Registry("connectors", check=as_connector, kind="connector")
"""Connectors by name (`jira`, `servicenow`, ...), from `pilothouse.connectors`."""


def option(
    entry: ConnectorEntry, name: str, kind: type | tuple[type, ...], default: Any = None
) -> Any:
    """`options[name]` of a connector entry, checked against `kind`."""
    value = entry.options.get(name, default)
    if value is not None and not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        raise ToolConfigError(
            f"connector {entry.connector}: option {name!r} must be a "
            f"{' or '.join(k.__name__ for k in kinds)}"
        )
    return value


def retry_wait(entry: ConnectorEntry) -> float:
    """The entry's `max_retry_wait_s` option (default 10 seconds)."""
    return float(option(entry, "max_retry_wait_s", (int, float), 10.0))


async def connector_tools(
    entry: ConnectorEntry, client: SafeHttpClient, credential: Credential | None
) -> list[Tool]:
    """The tools of the connector an entry names."""
    connector = CONNECTORS.get(entry.connector)
    known = connector.options | COMMON_OPTIONS
    unknown = sorted(set(entry.options) - known)
    if unknown:
        raise ToolConfigError(
            f"connector {entry.connector}: unknown options {', '.join(unknown)} (known: "
            f"{', '.join(sorted(known))})"
        )
    tools = connector.build(entry, client, credential)
    if inspect.isawaitable(tools):
        tools = await tools
    return list(tools)
