"""Connectors: curated tool sets over vendors' documented REST APIs (Jira Cloud,
ServiceNow, Trello, SAP OData)."""

from __future__ import annotations

from typing import Any

from pilothouse.tools.base import Tool
from pilothouse.tools.config import ConnectorEntry
from pilothouse.tools.connectors.base import ApiClient
from pilothouse.tools.errors import ToolConfigError
from pilothouse.tools.http import Credential, SafeHttpClient


def _option(entry: ConnectorEntry, name: str, kind: type, default: Any = None) -> Any:
    value = entry.options.get(name, default)
    if value is not None and not isinstance(value, kind):
        raise ToolConfigError(
            f"connector {entry.connector}: option {name!r} must be a {kind.__name__}"
        )
    return value


async def connector_tools(
    entry: ConnectorEntry, client: SafeHttpClient, credential: Credential | None
) -> list[Tool]:
    """The tools of the connector an entry names."""
    known = {
        "jira": {"max_retry_wait_s"},
        "servicenow": {"tables", "max_retry_wait_s"},
        "trello": {"max_retry_wait_s"},
        "sap_odata": {"entity_sets", "sap_client", "max_retry_wait_s"},
    }
    unknown = sorted(set(entry.options) - known[entry.connector])
    if unknown:
        raise ToolConfigError(
            f"connector {entry.connector}: unknown options {', '.join(unknown)} (known: "
            f"{', '.join(sorted(known[entry.connector]))})"
        )
    wait = float(_option(entry, "max_retry_wait_s", (int, float), 10.0))  # type: ignore[arg-type]
    budget = entry.result_budget
    if entry.connector == "jira":
        from pilothouse.tools.connectors.jira import Jira, jira_detail

        api = ApiClient(
            service="Jira",
            base_url=entry.base_url,
            client=client,
            credential=credential,
            detail=jira_detail,
            max_retry_wait_s=wait,
        )
        return Jira(api, budget=budget).tools()
    if entry.connector == "servicenow":
        from pilothouse.tools.connectors.servicenow import ServiceNow, servicenow_detail

        tables = _option(entry, "tables", list)
        api = ApiClient(
            service="ServiceNow",
            base_url=entry.base_url,
            client=client,
            credential=credential,
            detail=servicenow_detail,
            max_retry_wait_s=wait,
        )
        return ServiceNow(api, tables=tables, budget=budget).tools()
    if entry.connector == "trello":
        from pilothouse.tools.connectors.trello import Trello, trello_detail

        api = ApiClient(
            service="Trello",
            base_url=entry.base_url,
            client=client,
            credential=credential,
            detail=trello_detail,
            max_retry_wait_s=wait,
        )
        return Trello(api, budget=budget).tools()
    from pilothouse.tools.connectors.sap_odata import load_sap_tools

    return await load_sap_tools(
        entry.base_url,
        client=client,
        credential=credential,
        entity_sets=_option(entry, "entity_sets", list),
        sap_client=_option(entry, "sap_client", str),
        budget=budget,
        max_retry_wait_s=wait,
    )
