"""A third-party document loader, installed as its own package, reads its format from
a copilot's knowledge folder and from `pilothouse knowledge add`."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.errors import PilothouseError
from pilothouse.knowledge.loaders import load_file
from pilothouse.models.testing import FunctionModel
from pilothouse.types import ModelRequest
from tests.plugins.conftest import Run
from tests.plugins.dist import make_distribution

NOTES = """
from pilothouse.knowledge.documents import Block
from pilothouse.knowledge.loaders import Loader, UnreadableDocumentError


def parse(data):
    text = data.decode("utf-8")  # bad bytes raise: reported as a damaged file
    if not text.startswith("NOTE "):
        raise UnreadableDocumentError("not an Acme note: the first line must start with NOTE")
    head, _, body = text.partition("\\n")
    blocks = [Block("paragraph", part.strip()) for part in body.split("---") if part.strip()]
    return head[5:].strip(), blocks


LOADER = Loader("note", (".note",), parse, "Acme field notes")
"""

GUIDE = "NOTE Depot guide\nThe Acme depot opens at 6 am sharp.\n---\nForklifts need a permit.\n"


@pytest.fixture
def notes_package(tmp_path: Path) -> Path:
    return make_distribution(
        tmp_path / "site",
        "acme-notes",
        version="0.3.0",
        entry_points={"pilothouse.loaders": {"note": "acme_notes:LOADER"}},
        modules={"acme_notes.py": NOTES},
    )


def test_the_loader_reads_its_format_and_bad_bytes_get_a_clear_error(
    notes_package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guide = tmp_path / "guide.note"
    guide.write_text(GUIDE)
    with pytest.raises(PilothouseError, match=r"unsupported file type '\.note'"):
        load_file(guide)
    monkeypatch.syspath_prepend(str(notes_package))
    document = load_file(guide)
    assert (document.kind, document.title) == ("note", "Depot guide")
    assert [b.text for b in document.blocks] == [
        "The Acme depot opens at 6 am sharp.",
        "Forklifts need a permit.",
    ]
    binary = tmp_path / "broken.note"
    binary.write_bytes(b"\xff\xfe\x00\x81 not utf-8")
    with pytest.raises(PilothouseError, match=r"broken\.note.*damaged or not a valid NOTE file"):
        load_file(binary)
    other = tmp_path / "other.note"
    other.write_text("just text\n")
    with pytest.raises(PilothouseError, match=r"not an Acme note: the first line must start"):
        load_file(other)


async def test_a_copilot_grounds_its_answers_on_the_plugin_format(
    notes_package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(notes_package))
    folder = tmp_path / "depot"
    (folder / "knowledge").mkdir(parents=True)
    (folder / "knowledge" / "guide.note").write_text(GUIDE)
    (folder / "copilot.yaml").write_text(
        "name: depot\ninstructions: Answer from the notes.\n"
        "knowledge:\n  sources: [knowledge]\n  retrieval: {mode: bm25, top_k: 2}\n"
    )
    seen: list[ModelRequest] = []

    def answer(request: ModelRequest) -> str:
        seen.append(request)
        return "At 6 am."

    settings = Settings.from_sources(home=tmp_path / "home", environ={})
    copilot = await Copilot.open(folder, settings=settings, models=[FunctionModel(answer)])
    try:
        assert copilot.last_ingest is not None
        assert [o.status for o in copilot.last_ingest.outcomes] == ["added"]
        reply = await copilot.ask("When does the depot open?")
    finally:
        await copilot.aclose()
    assert reply.text.startswith("At 6 am.")
    prompt = "\n".join(m.text for m in seen[0].messages)
    assert "The Acme depot opens at 6 am sharp." in prompt


def test_the_command_line_lists_the_loader_and_indexes_its_files(
    notes_package: Path, tmp_path: Path, cli: Run
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.note").write_text(GUIDE)
    listed = cli(notes_package, "plugins", "loaders")
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if line.split()[1:2] == ["note"]]
    assert "acme-notes 0.3.0" in row and "acme_notes:LOADER" in row

    added = cli(notes_package, "knowledge", "add", str(docs))
    assert added.returncode == 0, added.stderr
    assert "1 added" in added.stdout
    found = cli(notes_package, "knowledge", "search", "forklift permit", "--mode", "bm25")
    assert found.returncode == 0, found.stderr
    assert "guide.note" in found.stdout and "Forklifts need a permit." in found.stdout


async def test_the_plugin_passes_the_loader_suite_in_one_call(
    notes_package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contextlib import asynccontextmanager

    from pilothouse.knowledge.loaders import LOADERS as FORMATS
    from pilothouse.testing.conformance import LOADERS, LoaderSubject

    monkeypatch.syspath_prepend(str(notes_package))

    @asynccontextmanager
    async def subject():  # type: ignore[no-untyped-def]
        yield LoaderSubject(FORMATS.get("note"), GUIDE.encode(), "Forklifts need a permit.")

    report = await LOADERS.validate(subject)
    report.raise_for_failures()
    assert len(report.passed) == 5 and [name for name, _ in report.skipped] == [
        "text_is_refused_by_a_binary_format"
    ]
