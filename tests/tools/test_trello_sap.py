"""The Trello and SAP OData connectors against strict local fakes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from pilothouse.config import Settings
from pilothouse.testing.loopback import serve_app
from pilothouse.tools.connectors.sap_odata import Property, key_literal, parse_metadata
from pilothouse.tools.errors import ServiceAuthError, ToolConfigError
from pilothouse.tools.loader import load_tools
from tests.tools.conftest import port_of
from tests.tools.fakes import sap as sap_fake
from tests.tools.fakes import trello as trello_fake


def env(tmp_path: Path, **extra: str) -> Settings:
    values = {
        "TRELLO_KEY": trello_fake.KEY,
        "TRELLO_TOKEN": trello_fake.TOKEN,
        "SAP_PASSWORD": sap_fake.PASSWORD,
        **extra,
    }
    return Settings(home=tmp_path, environ=values)


def trello_entry(base: str) -> dict[str, Any]:
    return {
        "connector": "trello",
        "base_url": base,
        "auth": {"type": "key_token", "key": "${env:TRELLO_KEY}", "token": "${env:TRELLO_TOKEN}"},
        "allow_network": [f"127.0.0.1:{port_of(base)}"],
    }


def sap_entry(service: str, base: str, **extra: Any) -> dict[str, Any]:
    return {
        "connector": "sap_odata",
        "base_url": base + service,
        "auth": {"type": "basic", "username": sap_fake.USER, "password": "${env:SAP_PASSWORD}"},
        "allow_network": [f"127.0.0.1:{port_of(base)}"],
        **extra,
    }


async def test_trello_boards_lists_cards_and_writes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = trello_fake.FakeTrello()
    with serve_app(fake.app) as base:
        async with await load_tools([trello_entry(base)], tmp_path, env(tmp_path)) as ts:
            assert {t.name for t in ts if t.requires_approval} == {
                "trello_create_card",
                "trello_move_card",
                "trello_comment_card",
            }
            boards = (await ts.call("trello_list_boards", {})).data["boards"]
            desk = next(b for b in boards if b["name"] == "Service Desk")
            lists = (await ts.call("trello_list_lists", {"board_id": desk["id"]})).data["lists"]
            todo, doing = lists[0]["id"], lists[1]["id"]
            cards = (await ts.call("trello_list_cards", {"list_id": todo})).data["cards"]
            assert [c["name"] for c in cards] == ["Replace VPN certificates", "Order printer toner"]
            found = await ts.call("trello_search_cards", {"query": "vpn", "board_id": desk["id"]})
            assert found.data["count"] == 1
            card_id = found.data["cards"][0]["id"]

            made = await ts.call(
                "trello_create_card",
                {"list_id": todo, "name": "Call ServiceNow about P1s", "description": "INC0010001"},
                approved=True,
            )
            assert fake.cards[made.data["id"]]["desc"] == "INC0010001"
            moved = await ts.call(
                "trello_move_card", {"card_id": card_id, "list_id": doing}, approved=True
            )
            assert moved.data["list_id"] == doing and fake.cards[card_id]["idList"] == doing
            said = await ts.call(
                "trello_comment_card", {"card_id": card_id, "text": "Started"}, approved=True
            )
            assert said.data["status"] == "added" and fake.comments[-1]["data"]["text"] == "Started"

            missing = await ts.call("trello_list_cards", {"list_id": "f" * 24})
            assert missing.is_error and "HTTP 404" in missing.content
            assert "The requested resource was not found." in missing.content
            invalid = await ts.call("trello_list_cards", {"list_id": "nope"})
            assert (
                invalid.is_error
                and "HTTP 400" in invalid.content
                and "invalid id" in invalid.content
            )
            fake.fail_next(
                429,
                {"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"},
                {"Retry-After": "60"},
            )
            limited = await ts.call("trello_list_boards", {})
            assert limited.is_error and "Rate limit exceeded" in limited.content
            assert "retry after 60 s" in limited.content
    # key and token went as query parameters, and never into a message or a log line
    assert all(r.query_params.get("key") == trello_fake.KEY for r in fake.requests)
    for text in (caplog.text, missing.content, invalid.content, limited.content):
        assert trello_fake.KEY not in text and trello_fake.TOKEN not in text


async def test_trello_wrong_token(tmp_path: Path) -> None:
    fake = trello_fake.FakeTrello()
    with serve_app(fake.app) as base:
        settings = env(tmp_path, TRELLO_TOKEN="revoked-token-1")
        async with await load_tools([trello_entry(base)], tmp_path, settings) as ts:
            result = await ts.call("trello_list_boards", {})
    assert result.is_error and "HTTP 401" in result.content and "invalid token" in result.content
    assert "revoked-token-1" not in result.content


def test_edmx_parsing_v2_and_v4() -> None:
    v2 = parse_metadata(sap_fake.V2_METADATA.encode(), "v2")
    assert v2.version == 2
    orders = v2.entity_sets[0]
    assert (orders.name, orders.entity_type) == ("SalesOrderSet", "SalesOrder")
    assert [k.name for k in orders.keys] == ["SalesOrderID"]
    assert orders.properties[2].label == "Net Amount"
    assert [k.name for k in v2.entity_sets[1].keys] == ["SalesOrderID", "ItemPosition"]
    v4 = parse_metadata(sap_fake.V4_METADATA.encode(), "v4")
    assert v4.version == 4
    assert [s.name for s in v4.entity_sets] == ["SalesOrder", "BusinessPartner"]
    assert v4.entity_sets[0].keys[0].label == "Sales Order"
    assert v4.entity_sets[1].keys[0].type == "Edm.Guid"  # resolved through the schema alias


@pytest.mark.parametrize(
    "document",
    [
        b"not xml",
        b"<root/>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><x>&b;</x>',
    ],
)
def test_bad_or_hostile_metadata_is_refused(document: bytes) -> None:
    with pytest.raises(ToolConfigError):
        parse_metadata(document, "svc")


def test_key_literals() -> None:
    assert key_literal(Property("Id", "Edm.String"), "O'Neil", 2) == "'O''Neil'"
    assert key_literal(Property("Id", "Edm.Guid"), "0894ef45", 2) == "guid'0894ef45'"
    assert key_literal(Property("Id", "Edm.Guid"), "0894ef45", 4) == "0894ef45"
    assert key_literal(Property("Id", "Edm.Int64"), 12, 2) == "12L"
    assert key_literal(Property("Id", "Edm.Int64"), 12, 4) == "12"
    assert key_literal(Property("At", "Edm.DateTime"), "2026-01-01T00:00:00", 2) == (
        "datetime'2026-01-01T00:00:00'"
    )


async def test_sap_odata_v2_service(tmp_path: Path) -> None:
    fake = sap_fake.FakeSap()
    with serve_app(fake.app) as base:
        entry = sap_entry(sap_fake.V2_PATH, base, options={"sap_client": "100"})
        async with await load_tools([entry], tmp_path, env(tmp_path)) as ts:
            assert sorted(ts.names) == [
                "sap_get_SalesOrderItemSet",
                "sap_get_SalesOrderSet",
                "sap_query_SalesOrderItemSet",
                "sap_query_SalesOrderSet",
            ]
            assert all(t.read_only and not t.requires_approval for t in ts)
            spec = ts.get("sap_query_SalesOrderSet").spec()  # type: ignore[union-attr]
            assert "NetAmount (Net Amount)" in spec.description
            assert "Status" in spec.parameters["properties"]["select"]["items"]["enum"]

            open_orders = await ts.call(
                "sap_query_SalesOrderSet",
                {"filter": "Status eq 'OPEN'", "select": ["SalesOrderID", "Status"], "top": 3},
            )
            assert not open_orders.is_error, open_orders.content
            data = open_orders.data
            assert data["results"] == [
                {"SalesOrderID": "500000001", "Status": "OPEN"},
                {"SalesOrderID": "500000002", "Status": "OPEN"},
                {"SalesOrderID": "500000004", "Status": "OPEN"},
            ]
            assert data["total"] == 4 and data["next_skip"] == 3
            big = await ts.call("sap_query_SalesOrderSet", {"filter": "NetAmount gt 4000"})
            assert [r["SalesOrderID"] for r in big.data["results"]] == [
                "500000005",
                "500000006",
                "500000007",
            ]
            assert "ToItems" not in big.data["results"][0]  # deferred navigation dropped
            one = await ts.call("sap_get_SalesOrderSet", {"SalesOrderID": "500000002"})
            assert one.data["CustomerName"] == "Customer 2" and "__metadata" not in one.data
            item = await ts.call(
                "sap_get_SalesOrderItemSet", {"SalesOrderID": "500000001", "ItemPosition": "20"}
            )
            assert item.data["Product"] == "HT-1001"
            missing = await ts.call("sap_get_SalesOrderSet", {"SalesOrderID": "1"})
            assert missing.is_error and "HTTP 404" in missing.content
            assert "Resource not found for segment 'SalesOrder'" in missing.content
            bad = await ts.call("sap_query_SalesOrderSet", {"filter": "Nope eq 1"})
            assert bad.is_error and "HTTP 400" in bad.content and "Invalid filter" in bad.content
    assert all(r.query_params.get("sap-client") == "100" for r in fake.requests)


async def test_sap_odata_v4_service(tmp_path: Path) -> None:
    fake = sap_fake.FakeSap()
    with serve_app(fake.app) as base:
        entry = sap_entry(
            sap_fake.V4_PATH, base, options={"entity_sets": ["SalesOrder", "BusinessPartner"]}
        )
        async with await load_tools([entry], tmp_path, env(tmp_path)) as ts:
            result = await ts.call(
                "sap_query_SalesOrder",
                {"filter": "OverallStatus eq 'A'", "orderby": "SalesOrder desc"},
            )
            assert [r["SalesOrder"] for r in result.data["results"]] == ["5", "3", "1"]
            assert result.data["total"] == 3 and "next_skip" not in result.data
            assert "@odata.context" not in repr(result.data)
            partner = await ts.call(
                "sap_get_BusinessPartner", {"PartnerUUID": "0894ef45-7741-1eda-b4cb-3f9b2a4b8a6e"}
            )
            assert partner.data["Name"] == "O'Neil GmbH"
            fake.fail_next(
                403, {"error": {"code": "AUTH", "message": "No authorization for SalesOrder"}}
            )
            denied = await ts.call("sap_query_SalesOrder", {})
            assert denied.is_error and "HTTP 403" in denied.content
            assert "No authorization for SalesOrder" in denied.content
        with pytest.raises(ToolConfigError, match="no entity set Invoice"):
            await load_tools([sap_fake_entry(base, ["Invoice"])], tmp_path, env(tmp_path))


def sap_fake_entry(base: str, sets: list[str]) -> dict[str, Any]:
    return sap_entry(sap_fake.V4_PATH, base, options={"entity_sets": sets})


async def test_sap_wrong_password_fails_at_load(tmp_path: Path) -> None:
    fake = sap_fake.FakeSap()
    with serve_app(fake.app) as base:
        settings = env(tmp_path, SAP_PASSWORD="old-password-3")
        with pytest.raises(ServiceAuthError, match="HTTP 401") as info:
            await load_tools([sap_entry(sap_fake.V2_PATH, base)], tmp_path, settings)
    assert "old-password-3" not in str(info.value)
