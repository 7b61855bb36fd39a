"""The helpdesk demo copilot (examples/helpdesk): its definition and prompts, the
handbook it answers from, its eval suite, and its SQLite ticket tools."""

from __future__ import annotations

import importlib.util
import io
import math
import re
import sqlite3
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from typing import Any

import docx
import jsonschema
import pytest
from pypdf import PdfReader

from pilothouse.config import default_home
from pilothouse.copilot.definition import load_definition
from pilothouse.copilot.prompty import load_prompty
from pilothouse.knowledge.documents import Document
from pilothouse.knowledge.loaders import load_file
from pilothouse.pipeline.suite import Suite, alternatives, load_suite
from pilothouse.tools import Toolset
from pilothouse.tools.loader import load_tools

ROOT = Path(__file__).resolve().parents[2]
HELPDESK = ROOT / "examples" / "helpdesk"
KNOWLEDGE = HELPDESK / "knowledge"

PDF_PAGES = {"security-policy.pdf": 6, "onboarding-guide.pdf": 6}
DOCX_HEADINGS = {
    "Title": ["Hardware and Software Catalogue"],
    "Heading 1": [
        "How to order",
        "Laptops by role",
        "Desk and home working equipment",
        "Mobile phones",
        "Standard software",
        "Optional software",
        "Software that is not allowed",
        "Repairs, warranty and disposal",
    ],
    "Heading 2": [
        "Refresh cycle",
        "Loan laptops",
        "Reporting a fault",
        "Batteries and chargers",
        "Returning and disposing of equipment",
    ],
}
MARKDOWN_HEADINGS = {
    "vpn-and-remote-access.md": [
        "VPN and remote access",
        "The VPN client",
        "Connecting",
        "Session limits and split tunnelling",
        "Home internet requirements",
        "Remote desktop to an office PC",
        "Travelling abroad",
        "Troubleshooting",
    ],
    "password-and-mfa.md": [
        "Password and MFA",
        "Password rules",
        "Changing or resetting your password",
        "Multi-factor authentication (MFA)",
        "New phone",
        "Lost phone or MFA reset",
        "Password manager",
    ],
    "printing.md": [
        "Printing",
        "Printer locations at Harbour House",
        "Adding the print queue",
        "Printing and collecting",
        "Large-format plotter",
        "Scanning",
        "Problems",
    ],
}
HTML_HEADINGS = {
    "service-desk-hours-and-slas.html": [
        "Service desk hours and SLAs",
        "Opening hours",
        "How to contact the Service Desk",
        "Out of hours",
        "Priorities",
        "Response and resolution targets",
        "Escalation",
        "After your ticket is resolved",
    ],
    "known-issues.html": [
        "Known issues",
        "Open issues",
        "KI-2026-014: Outlook search returns no results",
        "KI-2026-017: FortiClient VPN error -7200 after a password change",
        "KI-2026-019: External monitors flicker on the ThinkPad USB-C dock",
        "KI-2026-021: Floor 3 printer jams on A3 paper",
        "KI-2026-022: Teams camera not found on ThinkPad T14 Gen 5",
        "Recently resolved",
    ],
}
BOILERPLATE = ["Accept all", "Manage cookies", "Give feedback", "My profile", "Privacy notice"]
WORDS_PER_PAGE = 450  # a printed A4 page of body text


def normalise(text: str) -> str:
    """Lower case, Markdown emphasis and code marks removed, whitespace collapsed."""
    return " ".join(re.sub(r"[*`]", "", text).lower().split())


def words(text: str) -> int:
    return len(text.split())


def _load(name: str) -> Document:
    return load_file(KNOWLEDGE / name)


def section_text(document: Document, heading: str) -> str | None:
    """The text under `heading` (to the next heading of the same or a higher level)."""
    blocks = list(document.blocks)
    for index, block in enumerate(blocks):
        if block.kind == "heading" and normalise(block.text) == normalise(heading):
            parts = [block.text]
            for following in blocks[index + 1 :]:
                if following.kind == "heading" and following.level <= block.level:
                    break
                parts.append(following.text)
            return "\n".join(parts)
    return None


def page_text(document: Document, page: int) -> str:
    return "\n".join(b.text for b in document.blocks if b.page == page)


def source_text(file: str, *, page: int | None, heading: str | None) -> str:
    document = load_file(HELPDESK / file)
    if page is not None:
        return page_text(document, page)
    if heading is not None:
        found = section_text(document, heading)
        assert found is not None, f"{file} has no heading {heading!r}"
        return found
    return document.text


class _Headings(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self._open: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h1", "h2", "h3"):
            self._open = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h1", "h2", "h3") and self._open is not None:
            self.headings.append(" ".join("".join(self._open).split()))
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open.append(data)


def _import_file(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# --- the definition and its prompts ---------------------------------------------------


def test_definition_loads_with_the_demo_settings() -> None:
    definition, folder = load_definition(HELPDESK)
    assert folder == HELPDESK
    assert definition.name == "helpdesk"
    assert definition.instructions_file == "prompts/instructions.prompty"
    assert definition.knowledge is not None
    assert definition.knowledge.sources == ["knowledge"]
    assert definition.knowledge.grounding == "strict"
    assert definition.knowledge.retrieval.mode == "hybrid"
    assert definition.knowledge.retrieval.top_k == 3
    assert definition.limits.max_tool_steps == 3
    assert definition.limits.max_output_tokens == 300
    assert definition.model.primary is None  # the data directory's default: embedded model
    assert set(definition.model.variants) == {"claude", "gpt", "qwen"}
    assert definition.evals.suites == ["evals/basic.yaml"]


@pytest.mark.parametrize(
    "file",
    [
        "instructions.prompty",
        "instructions.claude.prompty",
        "instructions.gpt.prompty",
        "instructions.qwen.prompty",
    ],
)
def test_every_prompt_variant_renders_one_system_message_that_asks_for_citations(
    file: str,
) -> None:
    prompty = load_prompty(HELPDESK / "prompts" / file)
    assert prompty.generation == "C"
    # The runtime passes these inputs; a system-only prompt must accept and ignore them.
    messages = prompty.render({"question": "How do I reset MFA?", "context": "[1] ..."})
    assert [m.role for m in messages] == ["system"]
    text = messages[0].text
    assert "Corvane Logistics" in text
    assert "[1]" in text  # cite with the bracketed passage numbers
    assert "not cover" in text  # say when the handbook does not cover something
    assert "How do I reset MFA?" not in text


@pytest.mark.parametrize("file", ["instructions.prompty", "instructions.qwen.prompty"])
def test_the_prompts_for_small_models_are_short(file: str) -> None:
    text = load_prompty(HELPDESK / "prompts" / file).render({})[0].text
    # ~4 characters per token for English text: well under 150 tokens.
    assert len(text) / 4 < 120, len(text)
    assert words(text) < 90


# --- the handbook -------------------------------------------------------------------


def test_the_handbook_has_every_format_and_nothing_else() -> None:
    names = sorted(p.name for p in KNOWLEDGE.iterdir())
    assert names == sorted(
        [*PDF_PAGES, "hardware-and-software-catalogue.docx", *MARKDOWN_HEADINGS, *HTML_HEADINGS]
    )


@pytest.mark.parametrize(("name", "pages"), sorted(PDF_PAGES.items()))
def test_pdf_page_counts_and_clean_text(name: str, pages: int) -> None:
    reader = PdfReader(KNOWLEDGE / name)
    assert len(reader.pages) == pages
    assert reader.metadata is not None and "Corvane" in str(reader.metadata.title)
    for number, page in enumerate(reader.pages, start=1):
        text = page.extract_text()
        assert words(text) > 150, f"{name} page {number} is nearly empty"
        assert f"Page {number} of {pages}" in text
        assert "\ufffd" not in text  # no characters lost in the encoding


def test_docx_has_real_headings_lists_tables_and_page_breaks() -> None:
    document = docx.Document(str(KNOWLEDGE / "hardware-and-software-catalogue.docx"))
    found: dict[str, list[str]] = {}
    for paragraph in document.paragraphs:
        style = paragraph.style.name if paragraph.style is not None else ""
        if style in DOCX_HEADINGS:
            found.setdefault(style, []).append(paragraph.text)
    assert found == DOCX_HEADINGS
    assert document.core_properties.title == "Hardware and Software Catalogue"
    bullets = [p for p in document.paragraphs if p.style is not None and "List" in p.style.name]
    assert len(bullets) >= 20
    assert len(document.tables) == 3
    header = [cell.text for cell in document.tables[0].rows[0].cells]
    assert header == ["Role profile", "Standard laptop", "Memory", "Storage", "Operating system"]
    xml = document.element.xml
    assert xml.count('w:type="page"') == 3


@pytest.mark.parametrize(("name", "headings"), sorted(MARKDOWN_HEADINGS.items()))
def test_markdown_headings(name: str, headings: list[str]) -> None:
    text = (KNOWLEDGE / name).read_text(encoding="utf-8")
    assert re.findall(r"^#{1,3} (.+)$", text, flags=re.MULTILINE) == headings
    loaded = [b.text for b in _load(name).blocks if b.kind == "heading"]
    assert loaded == headings


@pytest.mark.parametrize(("name", "headings"), sorted(HTML_HEADINGS.items()))
def test_html_headings_and_the_loader_strips_the_page_boilerplate(
    name: str, headings: list[str]
) -> None:
    html = (KNOWLEDGE / name).read_text(encoding="utf-8")
    parser = _Headings()
    parser.feed(html)
    # The sidebar has its own h3s ("IT pages", ...): boilerplate the loader must drop.
    assert [h for h in parser.headings if h in headings] == headings
    assert "IT pages" in parser.headings
    for phrase in BOILERPLATE:
        assert phrase in html

    document = _load(name)
    assert [b.text for b in document.blocks if b.kind == "heading"] == headings
    for phrase in [*BOILERPLATE, "IT pages", "Internal use only", "Subscribe"]:
        assert phrase not in document.text, f"boilerplate {phrase!r} kept"
    assert document.title == headings[0]


def test_the_handbook_runs_to_at_least_twenty_pages() -> None:
    pdf_pages = sum(PDF_PAGES.values())
    docx_pages = 1 + docx.Document(
        str(KNOWLEDGE / "hardware-and-software-catalogue.docx")
    ).element.xml.count('w:type="page"')
    web_pages = sum(
        math.ceil(words(_load(name).text) / WORDS_PER_PAGE)
        for name in [*MARKDOWN_HEADINGS, *HTML_HEADINGS]
    )
    assert pdf_pages + docx_pages + web_pages >= 20, (pdf_pages, docx_pages, web_pages)


def test_the_committed_documents_match_their_sources(tmp_path: Path) -> None:
    """build_handbook.py rebuilds the same text and page breaks as the committed files."""
    builder = _import_file(HELPDESK / "build_handbook.py", "helpdesk_build_handbook")
    written = builder.build(tmp_path)
    assert sorted(p.name for p in written) == sorted(
        [*PDF_PAGES, "hardware-and-software-catalogue.docx"]
    )
    for name in PDF_PAGES:
        fresh = [p.extract_text() for p in PdfReader(tmp_path / name).pages]
        committed = [p.extract_text() for p in PdfReader(KNOWLEDGE / name).pages]
        assert fresh == committed, f"{name} is stale: run examples/helpdesk/build_handbook.py"
    name = "hardware-and-software-catalogue.docx"
    assert _load(name).blocks == load_file(tmp_path / name).blocks
    with zipfile.ZipFile(io.BytesIO((tmp_path / name).read_bytes())) as archive:
        assert {info.date_time for info in archive.infolist()} == {(2026, 4, 1, 9, 0, 0)}


def test_a_section_that_overflows_its_page_is_refused() -> None:
    builder = _import_file(HELPDESK / "build_handbook.py", "helpdesk_build_handbook_2")
    long_page = "# Title\n" + "\n\n".join(["A sentence that fills the page. " * 12] * 40)
    with pytest.raises(ValueError, match="overflowed"):
        builder.build_pdf(builder.parse_source(long_page))


# --- the eval suite -------------------------------------------------------------------


HELD_OUT = ROOT / "benchmarks" / "grounded" / "helpdesk-heldout.yaml"


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite(HELPDESK / "evals" / "basic.yaml")


@pytest.fixture(scope="module", params=["basic", "held-out"])
def any_suite(request: pytest.FixtureRequest) -> Suite:
    """The example's suite and the held-out one of benchmarks/grounded."""
    return load_suite(HELPDESK / "evals" / "basic.yaml" if request.param == "basic" else HELD_OUT)


def test_the_eval_suite_has_the_cases_the_demo_needs(suite: Suite) -> None:
    assert len(suite.cases) >= 15
    tool_cases = [c for c in suite.cases if c.expect.tool_calls]
    assert {c.expect.tool_calls[0].name for c in tool_cases} == {
        "create_ticket",
        "ticket_status",
        "list_my_tickets",
    }
    assert any(c.expect.no_answer for c in suite.cases)
    cited = {s.file for c in suite.cases for s in c.expect.sources}
    assert cited == {f"knowledge/{p.name}" for p in KNOWLEDGE.iterdir()}  # every document
    assert suite.defaults.approve is False


def test_every_expected_fact_is_in_the_source_the_case_names(any_suite: Suite) -> None:
    for case in any_suite.cases:
        if not case.expect.sources:
            continue
        texts = []
        for source in case.expect.sources:
            path = HELPDESK / source.file
            assert path.is_file(), f"{case.id}: {source.file} does not exist"
            if source.page is not None:
                assert path.suffix == ".pdf", f"{case.id}: pages exist only in PDFs"
                assert source.page <= len(PdfReader(path).pages), f"{case.id}: no such page"
            texts.append(
                normalise(source_text(source.file, page=source.page, heading=source.heading))
            )
        for keyword in case.expect.answer_includes:
            options = [normalise(k) for k in alternatives(keyword)]
            assert all(any(option in text for option in options) for text in texts), (
                f"{case.id}: {keyword!r} is not in every expected source"
            )


# What each out-of-scope case asks about, none of which the handbook mentions.
OUT_OF_SCOPE = {
    "not-covered-annual-leave": ["annual leave", "holiday allowance"],
    "not-covered-parking": ["parking", "car park"],
    "not-covered-meal-allowance": ["meal allowance", "per diem", "subsistence"],
    "out-of-scope-weather": ["weather", "forecast"],
    "not-covered-gym": ["gym", "fitness"],
    "not-covered-pension": ["pension"],
}


def test_the_unanswerable_cases_are_really_not_in_the_handbook(suite: Suite) -> None:
    everything = normalise(" ".join(load_file(path).text for path in sorted(KNOWLEDGE.iterdir())))
    unanswerable = {case.id: case for case in suite.cases if case.expect.no_answer}
    assert set(unanswerable) == set(OUT_OF_SCOPE)
    for case_id, phrases in OUT_OF_SCOPE.items():
        assert phrases[0] in unanswerable[case_id].question.lower()
        for phrase in phrases:
            assert phrase not in everything, f"{case_id}: the handbook mentions {phrase!r}"


def test_the_suite_covers_conversations_traps_and_missing_ids(suite: Suite) -> None:
    assert len(suite.cases) >= 40
    assert sum(1 for c in suite.cases if c.conversation) >= 8
    assert sum(1 for c in suite.cases if c.expect.no_tool_calls) >= 10
    assert sum(1 for c in suite.cases if c.expect.forbidden_tools) >= 3
    assert sum(1 for c in suite.cases if c.reference) >= 8


async def test_every_expected_tool_call_fits_the_tool_schema(any_suite: Suite) -> None:
    definition, folder = load_definition(HELPDESK)
    async with await load_tools(definition.tools, base_dir=folder) as toolset:
        for case in any_suite.cases:
            for call in case.expect.tool_calls:
                tool = toolset.get(call.name)
                assert tool is not None, f"{case.id}: no tool {call.name}"
                properties = tool.parameters["properties"]
                for name, value in call.arguments.items():
                    assert name in properties, f"{case.id}: {call.name} has no {name!r}"
                    jsonschema.validate(value, properties[name])
                for name in call.arguments_include:
                    assert properties[name]["type"] == "string"


# --- the ticket tools -----------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PILOTHOUSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HELPDESK_REQUESTER", "anna.kowalski")
    return tmp_path / "home"


@pytest.fixture
async def toolset(home: Path) -> Any:
    definition, folder = load_definition(HELPDESK)
    async with await load_tools(definition.tools, base_dir=folder) as tools:
        yield tools


MONITOR = {
    "summary": "Monitor flickers on the desk dock",
    "description": "Dell monitor on the USB-C dock goes black every few minutes.",
    "priority": "medium",
}


def _rows(home: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(home / "helpdesk-tickets.db") as db:
        return db.execute("SELECT number, summary, requester FROM tickets").fetchall()


async def test_the_ticket_tools_and_their_flags(toolset: Toolset) -> None:
    assert toolset.names == ["create_ticket", "ticket_status", "list_my_tickets"]
    create = toolset.get("create_ticket")
    assert create is not None and create.requires_approval and not create.read_only
    for name in ("ticket_status", "list_my_tickets"):
        tool = toolset.get(name)
        assert tool is not None and tool.read_only and not tool.requires_approval
    spec = create.spec()
    assert spec.parameters["required"] == ["summary", "description"]
    assert spec.parameters["properties"]["priority"]["enum"] == [
        "critical",
        "high",
        "medium",
        "low",
    ]
    for tool in toolset:
        description = tool.spec().description
        assert len(description) < 100, description  # concise for a small model
        assert "Only when" in description  # says when not to call it


async def test_create_then_status_then_list(toolset: Toolset, home: Path) -> None:
    first = await toolset.call("create_ticket", MONITOR, approved=True)
    assert not first.is_error, first.content
    assert first.data["ticket_id"] == "HD-1001"
    assert first.data["priority"] == "P3 (medium)"
    assert first.data["response_target"] == "4 business hours"  # the handbook's SLA
    assert (home / "helpdesk-tickets.db").is_file()

    second = await toolset.call(
        "create_ticket",
        {"summary": "VPN error -7200", "description": "Cannot connect", "priority": "high"},
        approved=True,
    )
    assert second.data["ticket_id"] == "HD-1002"

    status = await toolset.call("ticket_status", {"ticket_id": "HD-1001"})
    assert not status.is_error
    assert status.data["summary"] == MONITOR["summary"]
    assert status.data["description"] == MONITOR["description"]
    assert status.data["status"] == "open"
    assert status.data["requester"] == "anna.kowalski"
    for spelling in ("hd-1002", "1002", " HD 1002 "):
        again = await toolset.call("ticket_status", {"ticket_id": spelling})
        assert again.data["ticket_id"] == "HD-1002", spelling
        assert again.data["response_target"] == "30 minutes"

    listed = await toolset.call("list_my_tickets", {})
    assert listed.data["total"] == 2
    assert [t["ticket_id"] for t in listed.data["tickets"]] == ["HD-1002", "HD-1001"]


async def test_ids_keep_counting_across_requesters_and_reloads(
    toolset: Toolset, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await toolset.call("create_ticket", MONITOR, approved=True)
    monkeypatch.setenv("HELPDESK_REQUESTER", "ben.ortiz")
    mine = await toolset.call("list_my_tickets", {})
    assert mine.data == {"requester": "ben.ortiz", "total": 0, "tickets": []}
    definition, folder = load_definition(HELPDESK)
    async with await load_tools(definition.tools, base_dir=folder) as reloaded:
        created = await reloaded.call("create_ticket", MONITOR, approved=True)
    assert created.data["ticket_id"] == "HD-1002"
    assert [r[2] for r in _rows(home)] == ["anna.kowalski", "ben.ortiz"]


async def test_creating_needs_approval(toolset: Toolset, home: Path) -> None:
    result = await toolset.call("create_ticket", MONITOR)
    assert result.is_error
    assert "approval" in result.content
    assert not (home / "helpdesk-tickets.db").exists() or _rows(home) == []


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"description": "no summary", "priority": "low"}, "'summary' is a required property"),
        ({**MONITOR, "priority": "urgent"}, "'urgent' is not one of"),
        ({**MONITOR, "summary": "pc"}, "is too short"),
        ({**MONITOR, "summary": "x" * 121}, "is too long"),
        ({**MONITOR, "assignee": "me"}, "'assignee' was unexpected"),
        ({**MONITOR, "priority": 2}, "2 is not of type 'string'"),
    ],
)
async def test_create_arguments_are_validated(
    toolset: Toolset, home: Path, arguments: dict[str, Any], problem: str
) -> None:
    result = await toolset.call("create_ticket", arguments, approved=True)
    assert result.is_error
    assert problem in result.content
    assert not (home / "helpdesk-tickets.db").exists() or _rows(home) == []


async def test_priority_defaults_to_medium(toolset: Toolset) -> None:
    result = await toolset.call(
        "create_ticket", {"summary": "Need a second monitor", "description": "Home"}, approved=True
    )
    assert result.data["priority"] == "P3 (medium)"


async def test_unknown_and_malformed_ticket_ids_are_errors_the_model_can_read(
    toolset: Toolset,
) -> None:
    missing = await toolset.call("ticket_status", {"ticket_id": "HD-4242"})
    assert missing.is_error and "no ticket HD-4242" in missing.content
    garbage = await toolset.call("ticket_status", {"ticket_id": "my laptop"})
    assert garbage.is_error and "HD-1001" in garbage.content
    empty = await toolset.call("ticket_status", {})
    assert empty.is_error and "'ticket_id' is a required property" in empty.content


def test_the_database_is_in_the_default_data_directory_without_pilothouse_home(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PILOTHOUSE_HOME", raising=False)
    tickets = _import_file(HELPDESK / "tools" / "tickets.py", "helpdesk_tickets_module")
    assert tickets.database_path() == default_home() / "helpdesk-tickets.db"
    monkeypatch.delenv("HELPDESK_REQUESTER", raising=False)
    assert tickets.requester()  # the operating-system user
