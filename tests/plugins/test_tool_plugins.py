"""A third-party connector and a third-party tool source, each installed as its own
package, work from copilot.yaml (tools loaded, a copilot calling them) and from
`pilothouse tools`, without touching Pilothouse."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.models.testing import ScriptedModel, tool_call
from pilothouse.testing.loopback import serve_app
from pilothouse.tools.errors import ToolConfigError
from pilothouse.tools.loader import load_tools
from tests.plugins.conftest import Run
from tests.plugins.dist import make_distribution

# A connector over a small ticket API: GET /api/tickets?queue=&page= (paged), bearer auth.
DESK = """
from pilothouse.tools.connectors import ApiClient, Connector, ConnectorTool, option, retry_wait


def build(entry, client, credential):
    api = ApiClient(service="Acme Desk", base_url=entry.base_url, client=client,
                    credential=credential, max_retry_wait_s=retry_wait(entry))
    queue = option(entry, "queue", str, "support")

    async def open_tickets(args):
        tickets, page = [], 1
        while page:
            data = await api.json("GET", "/api/tickets", params={"queue": queue, "page": page})
            tickets += data["items"]
            page = data["next"]
        return {"tickets": tickets}

    return [ConnectorTool("open_tickets", "Open tickets of the queue",
                          {"type": "object", "properties": {}}, open_tickets, read_only=True)]


CONNECTOR = Connector(build, "Acme Desk", frozenset({"queue"}), "Acme Desk tickets")
"""

# A tool source: `rules: FILE` (a JSON file of rule name -> text), one lookup tool.
RULES = """
import json

from pilothouse.tools.base import Tool
from pilothouse.tools.config import SourceEntry
from pilothouse.tools.errors import ToolConfigError
from pilothouse.tools.sources import ToolSource


class RulesEntry(SourceEntry):
    rules: str


class RuleTool(Tool):
    def __init__(self, rules):
        super().__init__(
            name="house_rule",
            description="The house rule with this name",
            parameters={"type": "object", "properties": {"name": {"type": "string"}},
                        "required": ["name"]},
            read_only=True,
        )
        self.rules = rules

    async def invoke(self, arguments):
        return self.rules.get(arguments["name"], "no such rule")


async def load(entry, context):
    path = context.base_dir / entry.rules
    if not path.is_file():
        raise ToolConfigError(f"{context.where} (rules): {entry.rules} does not exist")
    return [RuleTool(json.loads(path.read_text()))]


SOURCE = ToolSource(RulesEntry, load, "house rules from a JSON file")
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    make_distribution(
        root,
        "acme-desk",
        version="2.0.1",
        entry_points={"pilothouse.connectors": {"acme_desk": "acme_desk:CONNECTOR"}},
        modules={"acme_desk.py": DESK},
    )
    make_distribution(
        root,
        "acme-rules",
        version="0.9",
        entry_points={"pilothouse.tool_sources": {"rules": "acme_rules:SOURCE"}},
        modules={"acme_rules.py": RULES},
    )
    return root


class DeskAPI:
    """The ticket API: two pages of tickets, bearer auth, and failures on demand."""

    def __init__(self) -> None:
        self.requests = 0
        self.failures: list[tuple[int, dict[str, str]]] = []

    def fail_next(self, status: int, headers: Mapping[str, str], times: int) -> None:
        self.failures += [(status, dict(headers))] * times


@pytest.fixture
def desk_api() -> Iterator[str]:
    with serve_desk(DeskAPI()) as url:
        yield url


@contextmanager
def serve_desk(desk: DeskAPI) -> Iterator[str]:
    pages = {1: (["T-1 printer jammed", "T-2 no VPN"], 2), 2: (["T-3 broken chair"], None)}

    async def tickets(request: Request) -> JSONResponse:
        desk.requests += 1
        if desk.failures:
            status, headers = desk.failures.pop(0)
            return JSONResponse({"error": f"simulated {status}"}, status, headers=headers)
        if request.headers.get("authorization") != "Bearer desk-token":
            return JSONResponse({"error": "bad token"}, status_code=401)
        assert request.query_params["queue"] == "facilities"
        items, following = pages[int(request.query_params["page"])]
        return JSONResponse({"items": items, "next": following})

    with serve_app(Starlette(routes=[Route("/api/tickets", tickets)])) as url:
        yield url


def copilot_folder(tmp_path: Path, api: str) -> Path:
    folder = tmp_path / "desk"
    folder.mkdir()
    port = api.rsplit(":", 1)[1]
    (folder / "rules.json").write_text(json.dumps({"parking": "Park on level -2 only."}))
    (folder / "copilot.yaml").write_text(
        f"""\
name: facilities
instructions: Help with facilities.
tools:
  - connector: acme_desk
    base_url: {api}
    allow_network: ["127.0.0.1:{port}"]
    auth: {{type: bearer, token: "${{env:DESK_TOKEN}}"}}
    options: {{queue: facilities}}
  - rules: rules.json
"""
    )
    return folder


async def test_tools_from_both_plugins_load_and_answer(
    site: Path, desk_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = copilot_folder(tmp_path, desk_api)
    import yaml

    entries = yaml.safe_load((folder / "copilot.yaml").read_text())["tools"]
    settings = Settings.from_sources(home=tmp_path / "home", environ={"DESK_TOKEN": "desk-token"})
    with pytest.raises(ToolConfigError, match="unknown connector 'acme_desk'"):
        await load_tools(entries[:1], folder, settings)
    with pytest.raises(ToolConfigError, match="rules is no installed tool source"):
        await load_tools(entries[1:], folder, settings)

    monkeypatch.syspath_prepend(str(site))
    async with await load_tools(entries, folder, settings) as toolset:
        assert sorted(toolset.names) == ["house_rule", "open_tickets"]
        result = await toolset.call("open_tickets", {})
        assert result.data == {
            "tickets": ["T-1 printer jammed", "T-2 no VPN", "T-3 broken chair"]
        }  # all pages
        rule = await toolset.call("house_rule", {"name": "parking"})
        assert rule.content == "Park on level -2 only."

    model = ScriptedModel(
        [tool_call("open_tickets", {}), tool_call("house_rule", {"name": "parking"}), "Done."]
    )
    copilot = await Copilot.open(folder, settings=settings, models=[model])
    try:
        answer = await copilot.ask("What is open, and where do I park?")
    finally:
        await copilot.aclose()
    assert answer.text == "Done."
    results = [m for m in model.requests[-1].messages if m.role == "tool"]
    seen = " ".join(part.content for m in results for part in m.tool_results)
    assert "T-3 broken chair" in seen and "Park on level -2 only." in seen


def test_the_command_line_lists_and_calls_the_plugins_tools(
    site: Path, desk_api: str, tmp_path: Path, cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = copilot_folder(tmp_path, desk_api)
    listed = cli(site, "plugins")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert any("acme_desk" in line and "acme-desk 2.0.1" in line for line in lines)
    assert any(" rules " in line and "acme-rules 0.9" in line for line in lines)

    monkeypatch.setenv("DESK_TOKEN", "desk-token")
    tools = cli(site, "tools", "list", str(folder), "--json")
    assert tools.returncode == 0, tools.stderr
    assert sorted(t["name"] for t in json.loads(tools.stdout)) == ["house_rule", "open_tickets"]
    called = cli(site, "tools", "call", str(folder), "open_tickets", "--json")
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["tickets"][-1] == "T-3 broken chair"


async def test_the_connector_passes_the_connector_suite_in_one_call(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pilothouse.testing.conformance import CONNECTORS, ConnectorSubject, Listing

    monkeypatch.syspath_prepend(str(site))

    @asynccontextmanager
    async def subject() -> AsyncIterator[ConnectorSubject]:
        desk = DeskAPI()
        with serve_desk(desk) as url:
            entry = {
                "connector": "acme_desk",
                "base_url": url,
                "allow_network": [f"127.0.0.1:{url.rsplit(':', 1)[1]}"],
                "auth": {"type": "bearer", "token": "${env:DESK_TOKEN}"},
                "options": {"queue": "facilities"},
            }
            settings = Settings.from_sources(home=tmp_path, environ={"DESK_TOKEN": "desk-token"})
            async with await load_tools([entry], tmp_path, settings) as tools:
                yield ConnectorSubject(
                    tools,
                    probe=("open_tickets", {}),
                    fail_next=desk.fail_next,
                    requests=lambda: desk.requests,
                    secrets=("desk-token",),
                    recover=desk.failures.clear,
                    listing=Listing("open_tickets", {}, 3, lambda data: len(data["tickets"])),
                )

    report = await CONNECTORS.validate(subject)
    report.raise_for_failures()
    assert not report.skipped
