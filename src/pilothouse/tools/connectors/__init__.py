"""Connectors: curated tool sets over vendors' documented REST APIs."""

from __future__ import annotations

from pilothouse.tools.base import Tool
from pilothouse.tools.config import ConnectorEntry
from pilothouse.tools.errors import ToolConfigError
from pilothouse.tools.http import Credential, SafeHttpClient


async def connector_tools(
    entry: ConnectorEntry, client: SafeHttpClient, credential: Credential | None
) -> list[Tool]:
    """The tools of the connector an entry names."""
    raise ToolConfigError(f"connector {entry.connector!r} is not available yet")
