"""The Jira and ServiceNow connectors against strict local fakes of their REST APIs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pilothouse.config import Settings
from pilothouse.testing.loopback import serve_app
from pilothouse.tools import Toolset
from pilothouse.tools.connectors.jira import from_adf, to_adf
from pilothouse.tools.loader import load_tools
from tests.tools.conftest import port_of
from tests.tools.fakes import jira as jira_fake
from tests.tools.fakes import servicenow as sn_fake


def env(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path,
        environ={
            "JIRA_TOKEN": jira_fake.TOKEN,
            "SN_PASSWORD": sn_fake.PASSWORD,
            "SN_TOKEN": sn_fake.BEARER,
        },
    )


def jira_entry(base: str, **extra: Any) -> dict[str, Any]:
    return {
        "connector": "jira",
        "base_url": base,
        "auth": {"type": "basic", "username": jira_fake.EMAIL, "password": "${env:JIRA_TOKEN}"},
        "allow_network": [f"127.0.0.1:{port_of(base)}"],
        **extra,
    }


def sn_entry(base: str, **extra: Any) -> dict[str, Any]:
    return {
        "connector": "servicenow",
        "base_url": base,
        "auth": {"type": "basic", "username": sn_fake.USER, "password": "${env:SN_PASSWORD}"},
        "allow_network": [f"127.0.0.1:{port_of(base)}"],
        **extra,
    }


@pytest.fixture
async def jira(tmp_path: Path) -> AsyncIterator[tuple[jira_fake.FakeJira, Toolset]]:
    fake = jira_fake.FakeJira()
    with serve_app(fake.app) as base:
        async with await load_tools([jira_entry(base)], tmp_path, env(tmp_path)) as toolset:
            yield fake, toolset


@pytest.fixture
async def servicenow(tmp_path: Path) -> AsyncIterator[tuple[sn_fake.FakeServiceNow, Toolset]]:
    fake = sn_fake.FakeServiceNow()
    with serve_app(fake.app) as base:
        async with await load_tools([sn_entry(base)], tmp_path, env(tmp_path)) as toolset:
            yield fake, toolset


def test_adf_round_trip() -> None:
    text = "First line\nsecond line\n\nNew paragraph"
    doc = to_adf(text)
    assert doc["type"] == "doc" and doc["version"] == 1
    assert [n["type"] for n in doc["content"][0]["content"]] == ["text", "hardBreak", "text"]
    assert from_adf(doc) == text


async def test_jira_tools_and_flags(jira: tuple[jira_fake.FakeJira, Toolset]) -> None:
    _, ts = jira
    assert sorted(ts.names) == [
        "jira_add_comment",
        "jira_create_issue",
        "jira_get_issue",
        "jira_get_transitions",
        "jira_list_projects",
        "jira_search_issues",
        "jira_transition_issue",
    ]
    writes = {t.name for t in ts if t.requires_approval}
    assert writes == {"jira_add_comment", "jira_create_issue", "jira_transition_issue"}


async def test_jira_search_follows_next_page_tokens(
    jira: tuple[jira_fake.FakeJira, Toolset],
) -> None:
    fake, ts = jira
    result = await ts.call("jira_search_issues", {"jql": "project = OPS AND priority = Highest"})
    assert not result.is_error, result.content
    keys = [i["key"] for i in result.data["issues"]]
    assert sorted(keys) == ["OPS-1", "OPS-2", "OPS-4", "OPS-6"]  # 3 per page: two pages
    assert "next_page_token" not in result.data
    assert len([r for r in fake.requests if r.url.path.endswith("/search/jql")]) == 2
    first = await ts.call("jira_search_issues", {"jql": "project = OPS", "max_results": 2})
    assert first.data["count"] == 2 and first.data["next_page_token"]
    rest = await ts.call(
        "jira_search_issues",
        {
            "jql": "project = OPS",
            "max_results": 10,
            "next_page_token": first.data["next_page_token"],
        },
    )
    assert not {i["key"] for i in rest.data["issues"]} & {i["key"] for i in first.data["issues"]}


async def test_jira_bad_jql_is_a_readable_error(jira: tuple[jira_fake.FakeJira, Toolset]) -> None:
    _, ts = jira
    result = await ts.call("jira_search_issues", {"jql": "fixVersion ~ 1.0"})
    assert result.is_error
    assert "HTTP 400" in result.content and "Error in the JQL Query" in result.content


async def test_jira_create_comment_transition(jira: tuple[jira_fake.FakeJira, Toolset]) -> None:
    fake, ts = jira
    created = await ts.call(
        "jira_create_issue",
        {
            "project_key": "OPS",
            "summary": "Investigate P1 incidents INC0010001 and INC0010002",
            "description": "Two P1 incidents are open.\n\nSee ServiceNow.",
            "issue_type": "Bug",
            "priority": "Highest",
        },
        approved=True,
    )
    assert not created.is_error, created.content
    key = created.data["key"]
    stored = fake.issues[key]["fields"]
    assert stored["description"]["content"][1]["content"][0]["text"] == "See ServiceNow."
    assert stored["priority"] == {"name": "Highest"}

    commented = await ts.call(
        "jira_add_comment", {"issue_key": key, "body": "On it."}, approved=True
    )
    assert commented.data["status"] == "added"
    issue = await ts.call("jira_get_issue", {"issue_key": key})
    assert issue.data["description"] == "Two P1 incidents are open.\n\nSee ServiceNow."
    assert issue.data["comments"][0]["body"] == "On it."

    options = await ts.call("jira_get_transitions", {"issue_key": key})
    assert [t["name"] for t in options.data["transitions"]] == ["Start Progress", "Done"]
    moved = await ts.call(
        "jira_transition_issue", {"issue_key": key, "transition": "in progress"}, approved=True
    )
    assert moved.data["transition"] == "Start Progress"
    assert fake.issues[key]["fields"]["status"]["name"] == "In Progress"
    wrong = await ts.call(
        "jira_transition_issue", {"issue_key": key, "transition": "Archive"}, approved=True
    )
    assert wrong.is_error and "Stop Progress (id 21)" in wrong.content


async def test_jira_projects_are_paged(jira: tuple[jira_fake.FakeJira, Toolset]) -> None:
    _, ts = jira
    result = await ts.call("jira_list_projects", {})
    assert [p["key"] for p in result.data["projects"]] == ["OPS", "IT", "HR", "FIN"]
    assert (await ts.call("jira_list_projects", {"query": "fin"})).data["count"] == 1


async def test_jira_issue_key_is_validated(jira: tuple[jira_fake.FakeJira, Toolset]) -> None:
    fake, ts = jira
    before = len(fake.requests)
    result = await ts.call("jira_get_issue", {"issue_key": "../../admin"})
    assert result.is_error and "does not match" in result.content
    assert len(fake.requests) == before


async def test_servicenow_open_p1_incidents(
    servicenow: tuple[sn_fake.FakeServiceNow, Toolset],
) -> None:
    _, ts = servicenow
    result = await ts.call(
        "servicenow_query_records",
        {
            "table": "incident",
            "query": "active=true^priority=1",
            "fields": ["number", "short_description"],
        },
    )
    assert not result.is_error, result.content
    assert [r["number"] for r in result.data["records"]] == [
        "INC0010001",
        "INC0010002",
        "INC0010006",
    ]
    assert result.data["total"] == 3 and "next_offset" not in result.data


async def test_servicenow_paging_with_link_headers(
    servicenow: tuple[sn_fake.FakeServiceNow, Toolset],
) -> None:
    _, ts = servicenow
    first = await ts.call("servicenow_query_records", {"query": "active=true", "limit": 2})
    assert first.data["count"] == 2 and first.data["total"] == 5 and first.data["next_offset"] == 2
    last = await ts.call(
        "servicenow_query_records", {"query": "active=true", "limit": 2, "offset": 4}
    )
    assert last.data["count"] == 1 and "next_offset" not in last.data


async def test_servicenow_create_get_update(
    servicenow: tuple[sn_fake.FakeServiceNow, Toolset],
) -> None:
    fake, ts = servicenow
    made = await ts.call(
        "servicenow_create_record",
        {"fields": {"short_description": "Laptop stolen", "urgency": "1"}},
        approved=True,
    )
    assert not made.is_error, made.content
    sys_id = made.data["sys_id"]
    assert fake.tables["incident"][sys_id]["short_description"] == "Laptop stolen"
    updated = await ts.call(
        "servicenow_update_record",
        {"sys_id": sys_id, "fields": {"state": "2", "work_notes": "Called the user"}},
        approved=True,
    )
    assert updated.data["record"]["state"] == "2"
    got = await ts.call("servicenow_get_record", {"sys_id": sys_id, "fields": ["number", "state"]})
    assert got.data == {"number": made.data["number"], "state": "2"}
    missing = await ts.call("servicenow_get_record", {"sys_id": "0" * 32})
    assert (
        missing.is_error and "HTTP 404" in missing.content and "No Record found" in missing.content
    )


async def test_servicenow_knowledge_search(
    servicenow: tuple[sn_fake.FakeServiceNow, Toolset],
) -> None:
    _, ts = servicenow
    result = await ts.call("servicenow_search_knowledge", {"query": "VPN"})
    assert [a["number"] for a in result.data["articles"]] == ["KB0010001"]  # retired one left out
    assert result.data["articles"][0]["excerpt"].startswith(
        "Open the VPN client and choose Reconnect"
    )
    injected = await ts.call("servicenow_search_knowledge", {"query": "x^workflow_state=retired"})
    assert injected.data["count"] == 0  # ^ in the text cannot add a condition


async def test_servicenow_table_allow_list_and_bearer(tmp_path: Path) -> None:
    fake = sn_fake.FakeServiceNow()
    with serve_app(fake.app) as base:
        entry = sn_entry(
            base,
            auth={"type": "bearer", "token": "${env:SN_TOKEN}"},
            options={"tables": ["incident", "kb_knowledge"]},
        )
        async with await load_tools([entry], tmp_path, env(tmp_path)) as ts:
            spec = ts.get("servicenow_query_records").spec()  # type: ignore[union-attr]
            assert spec.parameters["properties"]["table"]["enum"] == ["incident", "kb_knowledge"]
            refused = await ts.call("servicenow_query_records", {"table": "sys_user"})
            assert refused.is_error and "not one of" in refused.content
            ok = await ts.call("servicenow_query_records", {"query": "priority=4"})
            assert ok.data["count"] == 1


# --- typed errors the model can read ------------------------------------------------

ERROR_CASES = [
    (401, {"error": {"message": "User Not Authenticated"}}, {}, "credentials were refused"),
    (403, {"errorMessages": ["You do not have permission"]}, {}, "lacks permission"),
    (404, {"errorMessages": ["Issue does not exist"]}, {}, "does not exist"),
    (429, {"errorMessages": ["Rate limit exceeded"]}, {"Retry-After": "120"}, "retry after 120 s"),
    (500, {"errorMessages": ["Internal server error"]}, {}, "the service failed"),
    (503, "Service Unavailable", {}, "try again later"),
]


@pytest.mark.parametrize(("status", "body", "headers", "advice"), ERROR_CASES)
async def test_error_statuses_become_typed_readable_results(
    tmp_path: Path, status: int, body: Any, headers: dict[str, str], advice: str
) -> None:
    for fake, entry, tool, args in (
        (jira_fake.FakeJira(), jira_entry, "jira_get_issue", {"issue_key": "OPS-1"}),
        (sn_fake.FakeServiceNow(), sn_entry, "servicenow_query_records", {"query": "active=true"}),
    ):
        with serve_app(fake.app) as base:
            # 5xx on reads is retried once: fail twice so the error surfaces
            fake.fail_next(status, body, headers, times=2)
            async with await load_tools([entry(base)], tmp_path, env(tmp_path)) as ts:
                result = await ts.call(tool, args)
        assert result.is_error
        assert f"HTTP {status}" in result.content and advice in result.content
        assert jira_fake.TOKEN not in result.content and sn_fake.PASSWORD not in result.content


async def test_short_rate_limits_and_blips_are_retried_once(tmp_path: Path) -> None:
    fake = jira_fake.FakeJira()
    with serve_app(fake.app) as base:
        async with await load_tools([jira_entry(base)], tmp_path, env(tmp_path)) as ts:
            fake.fail_next(429, {"errorMessages": ["Rate limit"]}, {"Retry-After": "0.2"})
            started = time.monotonic()
            ok = await ts.call("jira_get_issue", {"issue_key": "OPS-1"})
            assert not ok.is_error and time.monotonic() - started >= 0.2
            fake.fail_next(503, "Service Unavailable")
            assert not (await ts.call("jira_get_issue", {"issue_key": "OPS-1"})).is_error
            fake.fail_next(503, "Service Unavailable")  # writes are not retried
            made = await ts.call(
                "jira_create_issue", {"project_key": "OPS", "summary": "x"}, approved=True
            )
            assert made.is_error and "HTTP 503" in made.content


async def test_wrong_credentials_give_401(tmp_path: Path) -> None:
    fake = jira_fake.FakeJira()
    with serve_app(fake.app) as base:
        settings = Settings(home=tmp_path, environ={"JIRA_TOKEN": "expired-token-77"})
        async with await load_tools([jira_entry(base)], tmp_path, settings) as ts:
            result = await ts.call("jira_search_issues", {"jql": "project = OPS"})
    assert (
        result.is_error
        and "HTTP 401" in result.content
        and "You are not authenticated" in result.content
    )
    assert "expired-token-77" not in result.content
