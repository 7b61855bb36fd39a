"""Connectors: curated tool sets over vendors' documented REST APIs (Jira Cloud,
ServiceNow, Trello, SAP OData), and any installed as plugins (`pilothouse.connectors`)."""

from pilothouse.tools.connectors.base import ApiClient, ConnectorTool
from pilothouse.tools.connectors.registry import (
    CONNECTORS,
    Connector,
    connector_tools,
    option,
    retry_wait,
)

__all__ = [
    "CONNECTORS",
    "ApiClient",
    "Connector",
    "ConnectorTool",
    "connector_tools",
    "option",
    "retry_wait",
]
