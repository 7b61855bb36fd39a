"""`pilothouse tools list|call` on a copilot folder, against the Jira and ServiceNow
fakes: the help-desk scenario (open P1 incidents, then a ticket after approval)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pilothouse.cli.app import app
from pilothouse.testing.loopback import serve_app
from tests.tools.fakes.helpdesk import (
    OPEN_P1_NUMBERS,
    OPEN_P1_QUERY,
    helpdesk_environ,
    write_helpdesk_copilot,
)
from tests.tools.fakes.jira import FakeJira
from tests.tools.fakes.servicenow import FakeServiceNow


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("PILOTHOUSE_HOME", str(tmp_path / "home"))
    for key, value in helpdesk_environ().items():
        monkeypatch.setenv(key, value)
    return CliRunner()


def test_helpdesk_scenario_through_the_cli(runner: CliRunner, tmp_path: Path) -> None:
    jira, sn = FakeJira(), FakeServiceNow()
    with serve_app(jira.app) as jira_url, serve_app(sn.app) as sn_url:
        folder = write_helpdesk_copilot(tmp_path / "helpdesk", jira_url, sn_url)

        listed = runner.invoke(app, ["tools", "list", str(folder), "--json"])
        assert listed.exit_code == 0, listed.output
        specs = {t["name"]: t for t in json.loads(listed.output)}
        assert specs["servicenow_query_records"]["read_only"]
        assert specs["jira_create_issue"]["requires_approval"]
        assert "project_key" not in specs["jira_create_issue"]["parameters"]["properties"]

        table = runner.invoke(app, ["tools", "list", str(folder)])
        assert "jira_create_issue" in table.output and "write, approval" in table.output

        p1 = runner.invoke(
            app,
            [
                "tools",
                "call",
                str(folder),
                "servicenow_query_records",
                "--json",
                "--args",
                json.dumps(OPEN_P1_QUERY),
            ],
        )
        assert p1.exit_code == 0, p1.output
        assert [r["number"] for r in json.loads(p1.output)["records"]] == OPEN_P1_NUMBERS

        args = json.dumps({"summary": "Follow up P1 incidents", "description": "INC0010001"})
        declined = runner.invoke(
            app, ["tools", "call", str(folder), "jira_create_issue", "--args", args], input="n\n"
        )
        assert declined.exit_code == 1 and "not approved" in declined.output
        assert len(jira.issues) == 7

        approved = runner.invoke(
            app, ["tools", "call", str(folder), "jira_create_issue", "--args", args], input="y\n"
        )
        assert approved.exit_code == 0, approved.output
        assert "OPS-7" in approved.output  # OPS-1..6 existed; bound project OPS
        assert jira.issues["OPS-7"]["fields"]["summary"] == "Follow up P1 incidents"

        forced = runner.invoke(
            app, ["tools", "call", str(folder), "jira_create_issue", "--yes", "--args", args]
        )
        assert forced.exit_code == 0 and "OPS-8" in forced.output


def test_cli_errors(runner: CliRunner, tmp_path: Path) -> None:
    missing = runner.invoke(app, ["tools", "list", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "copilot.yaml" in missing.output
    folder = tmp_path / "c"
    folder.mkdir()
    head = "name: c\ninstructions: Help.\n"
    (folder / "copilot.yaml").write_text(
        head + "tools:\n  - connector: jira\n    base_url: https://acme.atlassian.net\n"
        "    auth: {type: bearer, token: plain-text-secret}\n"
    )
    literal = runner.invoke(app, ["tools", "list", str(folder)])
    assert literal.exit_code == 2 and "secret in clear" in literal.output
    assert "copilot.yaml:6: tools.0.auth.token: holds a secret" in literal.output
    assert "plain-text-secret" not in literal.output
    (folder / "copilot.yaml").write_text(
        head + "tools:\n  - connector: jira\n    base_url: https://acme.atlassian.net\n"
        "    auth: {type: bearer, token: '${env:NOT_SET_ANYWHERE}'}\n"
    )
    unset = runner.invoke(app, ["tools", "list", str(folder)])
    assert unset.exit_code == 2 and "NOT_SET_ANYWHERE, which is not set" in unset.output
    bad_args = runner.invoke(app, ["tools", "call", str(folder), "x", "--args", "[1]"])
    assert bad_args.exit_code == 2 and "JSON object" in bad_args.output
