"""Knowledge sources stay in the copilot folder (links resolved): absolute paths, `../`
escapes and absolute globs that point outside are an error naming file, line and field,
unless a local copilot sets `knowledge.allow_outside_folder: true`; a link inside the
folder that leads out is refused at ingestion."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.copilot.definition import CopilotDefinitionError, load_definition
from pilothouse.models import ScriptedModel

SECRET_TEXT = "The root password of the payroll server is Tr0ub4dor."


def write_copilot(folder: Path, sources: list[str], *, allow: bool | None = None) -> Path:
    (folder / "knowledge").mkdir(parents=True, exist_ok=True)
    (folder / "knowledge/vpn.md").write_text("# VPN\n\nThe VPN client is WireGuard.\n")
    listed = ", ".join(f"'{s}'" for s in sources)
    extra = "" if allow is None else f"\n  allow_outside_folder: {str(allow).lower()}"
    (folder / "copilot.yaml").write_text(
        f"name: confined\ninstructions: You help.\nknowledge:\n  sources: [{listed}]{extra}\n"
    )
    return folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "server-files"
    folder.mkdir()
    (folder / "payroll.md").write_text(f"# Payroll\n\n{SECRET_TEXT}\n")
    return folder


@pytest.mark.parametrize(
    "source",
    [
        "{outside}/payroll.md",  # absolute path
        "../server-files/payroll.md",  # ../ escape
        "knowledge/../../../{name}/server-files",  # deep ../
        "{outside}/*.md",  # absolute glob
        "knowledge/*/../../../server-files/*.md",  # .. after a glob character
    ],
)
def test_a_source_outside_the_folder_is_an_error(
    tmp_path: Path, outside: Path, source: str
) -> None:
    source = source.format(outside=outside, name=tmp_path.name)
    folder = write_copilot(tmp_path / "confined", [source])
    with pytest.raises(CopilotDefinitionError) as caught:
        load_definition(folder)
    message = str(caught.value)
    assert f"{folder / 'copilot.yaml'}:4: knowledge.sources.0: " in message
    assert "outside the copilot folder" in message and "allow_outside_folder" in message


def test_sources_inside_the_folder_load(tmp_path: Path) -> None:
    folder = write_copilot(
        tmp_path / "c", ["knowledge", "knowledge/*.md", "**/*.md", str(tmp_path / "c/knowledge")]
    )
    definition, _ = load_definition(folder)
    assert definition.knowledge is not None and not definition.knowledge.allow_outside_folder


def test_a_local_copilot_may_allow_sources_outside(tmp_path: Path, outside: Path) -> None:
    folder = write_copilot(tmp_path / "c", [str(outside / "payroll.md")], allow=True)
    definition, _ = load_definition(folder)
    assert definition.knowledge is not None and definition.knowledge.allow_outside_folder
    with pytest.raises(CopilotDefinitionError, match="uploaded copilot's knowledge stays"):
        load_definition(folder, uploaded=True)


async def _indexed(folder: Path, settings: Settings) -> tuple[set[str], dict[str, str]]:
    copilot = await Copilot.open(folder, settings=settings, models=[ScriptedModel(["ok"])])
    try:
        assert copilot.knowledge is not None and copilot.last_ingest is not None
        sources = {Path(d.source).name for d in copilot.knowledge.documents()}
        failed = {Path(o.source).name: o.reason for o in copilot.last_ingest.failures}
        return sources, failed
    finally:
        await copilot.aclose()


async def test_a_link_inside_the_folder_that_leads_out_is_not_indexed(
    tmp_path: Path, outside: Path
) -> None:
    folder = write_copilot(tmp_path / "c", ["knowledge"])
    (folder / "knowledge/payroll.md").symlink_to(outside / "payroll.md")
    (folder / "knowledge/server").symlink_to(outside)
    settings = Settings.from_sources(home=tmp_path / "home", environ={})
    indexed, failed = await _indexed(folder, settings)
    assert indexed == {"vpn.md"}
    assert "outside the copilot folder" in failed["payroll.md"]
    # allowed explicitly: the owner's choice
    write_copilot(folder, ["knowledge"], allow=True)
    indexed, failed = await _indexed(folder, settings)
    assert indexed == {"vpn.md", "payroll.md"} and failed == {}
    # and forbidden again: what came in through the link is removed
    write_copilot(folder, ["knowledge"])
    indexed, _ = await _indexed(folder, settings)
    assert indexed == {"vpn.md"}
