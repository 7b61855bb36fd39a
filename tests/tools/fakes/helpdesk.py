"""The help-desk scenario, ready for the copilot runtime's tests to reuse: a copilot
folder whose copilot.yaml wires the Jira and ServiceNow connectors to the local
fakes, and the environment that holds their secrets.

    with serve_app(FakeJira().app) as jira, serve_app(FakeServiceNow().app) as sn:
        folder = write_helpdesk_copilot(tmp_path / "helpdesk", jira, sn)
        environ = helpdesk_environ()
        # "what are my open P1 incidents?" -> servicenow_query_records
        #     {"table": "incident", "query": "active=true^priority=1"}
        #     answers INC0010001, INC0010002, INC0010006
        # "file a ticket" -> jira_create_issue (requires approval)
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.tools.conftest import port_of
from tests.tools.fakes import jira, servicenow

OPEN_P1_QUERY = {"table": "incident", "query": "active=true^priority=1"}
OPEN_P1_NUMBERS = ["INC0010001", "INC0010002", "INC0010006"]


def helpdesk_environ() -> dict[str, str]:
    return {"JIRA_API_TOKEN": jira.TOKEN, "SERVICENOW_PASSWORD": servicenow.PASSWORD}


def helpdesk_tools(jira_url: str, servicenow_url: str) -> list[dict[str, object]]:
    return [
        {
            "connector": "servicenow",
            "base_url": servicenow_url,
            "auth": {
                "type": "basic",
                "username": servicenow.USER,
                "password": "${env:SERVICENOW_PASSWORD}",
            },
            "options": {"tables": ["incident", "kb_knowledge"]},
            "allow_network": [f"127.0.0.1:{port_of(servicenow_url)}"],
        },
        {
            "connector": "jira",
            "base_url": jira_url,
            "auth": {"type": "basic", "username": jira.EMAIL, "password": "${env:JIRA_API_TOKEN}"},
            "bindings": {"project_key": "OPS"},
            "allow_network": [f"127.0.0.1:{port_of(jira_url)}"],
        },
    ]


def write_helpdesk_copilot(folder: Path, jira_url: str, servicenow_url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "name": "helpdesk",
        "instructions": "You help the IT operations team with incidents and tickets.",
        "tools": helpdesk_tools(jira_url, servicenow_url),
    }
    (folder / "copilot.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder
