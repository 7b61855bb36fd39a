"""Every built-in connector passes the connector conformance suite against the strict
local fake of its vendor's API (tests/tools/fakes/)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pilothouse.config import Settings
from pilothouse.testing.conformance import (
    CONNECTORS,
    Check,
    ConnectorSubject,
    Listing,
    run_check,
)
from pilothouse.testing.loopback import serve_app
from pilothouse.tools.loader import load_tools
from tests.tools.conftest import port_of
from tests.tools.fakes import jira, sap, servicenow, trello


@dataclass
class Vendor:
    make_fake: Callable[[], Any]
    entry: Callable[[str], dict[str, Any]]
    environ: dict[str, str]
    error_body: Callable[[int], Any]
    probe: tuple[str, dict[str, Any]]
    secrets: tuple[str, ...]
    listing: Listing | None = None

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset({"retries", "paging"} if self.listing else {"retries"})


def entry(connector: str, auth: dict[str, Any], path: str = "") -> Callable[[str], dict[str, Any]]:
    def make(base: str) -> dict[str, Any]:
        return {
            "connector": connector,
            "base_url": base + path,
            "auth": auth,
            "allow_network": [f"127.0.0.1:{port_of(base)}"],
        }

    return make


VENDORS = {
    "jira": Vendor(
        jira.FakeJira,
        entry("jira", {"type": "basic", "username": jira.EMAIL, "password": "${env:T}"}),
        {"T": jira.TOKEN},
        lambda status: {"errorMessages": [f"simulated {status}"], "errors": {}},
        ("jira_get_issue", {"issue_key": "OPS-1"}),
        (jira.TOKEN,),
        Listing(
            "jira_search_issues",
            {"jql": "project = OPS AND priority = Highest"},
            4,  # three to a page in the fake: two pages
            lambda data: len(data["issues"]),
        ),
    ),
    "servicenow": Vendor(
        servicenow.FakeServiceNow,
        entry("servicenow", {"type": "basic", "username": servicenow.USER, "password": "${env:T}"}),
        {"T": servicenow.PASSWORD},
        lambda status: {"error": {"message": f"simulated {status}"}, "status": "failure"},
        ("servicenow_query_records", {"query": "active=true", "limit": 2}),
        (servicenow.PASSWORD,),
    ),
    "trello": Vendor(
        trello.FakeTrello,
        entry("trello", {"type": "key_token", "key": "${env:K}", "token": "${env:T}"}),
        {"K": trello.KEY, "T": trello.TOKEN},
        lambda status: f"simulated {status}",
        ("trello_list_boards", {}),
        (trello.KEY, trello.TOKEN),
    ),
    "sap_odata": Vendor(
        sap.FakeSap,
        entry(
            "sap_odata",
            {"type": "basic", "username": sap.USER, "password": "${env:T}"},
            sap.V2_PATH,
        ),
        {"T": sap.PASSWORD},
        lambda status: {"error": {"code": "SIM", "message": {"lang": "en", "value": "simulated"}}},
        ("sap_get_SalesOrderSet", {"SalesOrderID": "500000002"}),
        (sap.PASSWORD,),
    ),
}


@asynccontextmanager
async def connector(name: str, tmp_path: Path) -> AsyncIterator[ConnectorSubject]:
    vendor = VENDORS[name]
    fake = vendor.make_fake()

    def fail_next(status: int, headers: Mapping[str, str], times: int) -> None:
        fake.fail_next(status, vendor.error_body(status), dict(headers), times)

    with serve_app(fake.app) as base:
        settings = Settings(home=tmp_path, environ=vendor.environ)
        async with await load_tools([vendor.entry(base)], tmp_path, settings) as tools:
            yield ConnectorSubject(
                tools,
                vendor.probe,
                fail_next,
                lambda: len(fake.requests),
                vendor.secrets,
                fake.failures.clear,
                vendor.listing,
                vendor.capabilities,
            )


CASES = [
    pytest.param(name, check, id=f"{name}-{check.name}")
    for name, vendor in sorted(VENDORS.items())
    for check in CONNECTORS.checks_for(vendor.capabilities)
]


@pytest.mark.parametrize(("name", "check"), CASES)
async def test_builtin_connector(name: str, check: Check[ConnectorSubject], tmp_path: Path) -> None:
    async with connector(name, tmp_path) as subject:
        await run_check(check, subject)
