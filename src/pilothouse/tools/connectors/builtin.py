"""The built-in connectors, declared as `pilothouse.connectors` entry points in
Pilothouse's pyproject.toml. Each vendor's module loads when a copilot uses it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pilothouse.tools.base import Tool
from pilothouse.tools.connectors.base import ApiClient, DetailFn
from pilothouse.tools.connectors.registry import Connector, option, retry_wait
from pilothouse.tools.http import Credential, SafeHttpClient

if TYPE_CHECKING:
    from pilothouse.tools.config import ConnectorEntry


def _api(
    service: str,
    detail: DetailFn,
    entry: ConnectorEntry,
    client: SafeHttpClient,
    credential: Credential | None,
) -> ApiClient:
    return ApiClient(
        service=service,
        base_url=entry.base_url,
        client=client,
        credential=credential,
        detail=detail,
        max_retry_wait_s=retry_wait(entry),
    )


def _jira(
    entry: ConnectorEntry, client: SafeHttpClient, credential: Credential | None
) -> list[Tool]:
    from pilothouse.tools.connectors.jira import Jira, jira_detail

    api = _api("Jira", jira_detail, entry, client, credential)
    return Jira(api, budget=entry.result_budget).tools()


def _servicenow(
    entry: ConnectorEntry, client: SafeHttpClient, credential: Credential | None
) -> list[Tool]:
    from pilothouse.tools.connectors.servicenow import ServiceNow, servicenow_detail

    tables = option(entry, "tables", list)
    api = _api("ServiceNow", servicenow_detail, entry, client, credential)
    return ServiceNow(api, tables=tables, budget=entry.result_budget).tools()


def _trello(
    entry: ConnectorEntry, client: SafeHttpClient, credential: Credential | None
) -> list[Tool]:
    from pilothouse.tools.connectors.trello import Trello, trello_detail

    api = _api("Trello", trello_detail, entry, client, credential)
    return Trello(api, budget=entry.result_budget).tools()


async def _sap_odata(
    entry: ConnectorEntry, client: SafeHttpClient, credential: Credential | None
) -> list[Tool]:
    from pilothouse.tools.connectors.sap_odata import load_sap_tools

    return await load_sap_tools(
        entry.base_url,
        client=client,
        credential=credential,
        entity_sets=option(entry, "entity_sets", list),
        sap_client=option(entry, "sap_client", str),
        budget=entry.result_budget,
        max_retry_wait_s=retry_wait(entry),
    )


JIRA = Connector(_jira, "Jira", description="Jira Cloud issues: search, read, create, comment")
SERVICENOW = Connector(
    _servicenow, "ServiceNow", frozenset({"tables"}), "ServiceNow Table API records"
)
TRELLO = Connector(_trello, "Trello", description="Trello boards, lists and cards")
SAP_ODATA = Connector(
    _sap_odata,
    "SAP OData",
    frozenset({"entity_sets", "sap_client"}),
    "SAP OData services (v2 and v4), one tool set per entity set",
)
