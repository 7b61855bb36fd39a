"""`pilothouse knowledge ...` end to end, with the real local embedding model, in a
fresh data directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pilothouse.cli.app import app

from .conftest import mixed_folder

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "home"
    monkeypatch.setenv("PILOTHOUSE_HOME", str(data))
    return data


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["knowledge", *args])
    # Error messages may be wrapped to the terminal width: compare them unwrapped.
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def test_mixed_folder_ingests_and_search_cites_file_and_page_or_heading(
    tmp_path: Path, home: Path
) -> None:
    folder = mixed_folder(tmp_path / "docs")
    code, out, err = cli("add", str(folder))
    assert code == 0, err
    assert "5 added" in out
    assert (home / "knowledge" / "default.sqlite3").is_file()

    code, out, _ = cli("search", "how long do refunds take?", "-k", "2")
    assert code == 0
    assert f"1. {folder / 'policy.pdf'}, page 1" in out
    assert "Refunds are paid within 14 days" in out

    code, out, _ = cli("search", "how many vacation days do senior staff get", "--json")
    top = json.loads(out)[0]
    assert top["source"].endswith("handbook.docx") and top["headings"] == ["Handbook", "Holidays"]

    code, out, _ = cli("search", "which wire goes to the live terminal", "-k", "1")
    assert "install.html, Installing the widget › Wiring" in out

    # Unchanged on a second run.
    code, out, _ = cli("add", str(folder))
    assert code == 0 and "5 unchanged" in out and "0 chunks embedded" in out

    code, out, _ = cli("list", "--json")
    assert sorted(Path(d["source"]).name for d in json.loads(out)) == [
        "handbook.docx",
        "install.html",
        "people.csv",
        "policy.pdf",
        "runbook.md",
    ]
    code, out, _ = cli("stats", "--json")
    stats = json.loads(out)
    assert stats["documents"] == 5 and stats["settings"]["dimensions"] == 384
    assert stats["settings"]["embedding_model"] == "local:all-minilm-l6-v2-int8"

    code, out, _ = cli("remove", str(folder / "people.csv"))
    assert code == 0 and "removed" in out
    code, out, _ = cli("search", "Bob Jones phone number", "--source", str(folder / "people.csv"))
    assert "no results" in out
    code, _, err = cli("remove", str(folder / "people.csv"))
    assert code == 1 and "nothing matched" in err
    # A folder removes everything under it.
    code, out, _ = cli("remove", str(folder))
    assert code == 0 and out.count("removed") == 4
    code, out, _ = cli("list", "--json")
    assert json.loads(out) == []


def test_failures_are_listed_with_reasons_and_exit_status_1(tmp_path: Path, home: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "ok.md").write_text("# Fine\n\nA fine document about lighthouses.")
    (folder / "empty.txt").write_bytes(b"")
    code, out, err = cli("add", str(folder))
    assert code == 1
    assert "1 added" in out and "1 failed" in out
    assert "empty.txt: empty file" in err
    code, out, _ = cli("search", "lighthouses", "--min-score", "0.2")
    assert "ok.md" in out


def test_min_score_and_mode_options(tmp_path: Path, home: Path) -> None:
    folder = mixed_folder(tmp_path / "docs")
    cli("add", str(folder))
    code, out, _ = cli("search", "refund", "--mode", "bm25", "--json")
    assert code == 0 and set(json.loads(out)[0]["scores"]) == {"bm25"}
    code, out, _ = cli("search", "refund", "--min-score", "5", "--json")
    assert json.loads(out) == []
    code, _, err = cli("search", "refund", "--mode", "fuzzy")
    assert code != 0 and "--mode must be one of" in err


def test_copilot_knowledge_base_is_separate(tmp_path: Path, home: Path) -> None:
    copilot = tmp_path / "helpdesk"
    copilot.mkdir()
    (copilot / "copilot.yaml").write_text("name: helpdesk\n")
    (tmp_path / "kb.md").write_text("# Printers\n\nRestart the printer spooler service.")
    code, _, err = cli("add", str(tmp_path / "kb.md"), "--copilot", str(copilot))
    assert code == 0, err
    code, out, _ = cli("search", "printer spooler", "--copilot", str(copilot))
    assert "kb.md" in out
    code, out, _ = cli("search", "printer spooler")  # the default knowledge base is empty
    assert "no results" in out
    bases = list((home / "knowledge" / "copilots").glob("helpdesk-*.sqlite3"))
    assert len(bases) == 1
    code, _, err = cli("search", "x", "--copilot", str(tmp_path))
    assert code != 0 and "not a copilot folder" in err


def test_ingest_display_names_the_file_being_embedded_with_rate_and_time_left() -> None:
    from pilothouse.cli.knowledge_display import describe
    from pilothouse.knowledge import IngestProgress

    event = IngestProgress(
        files_done=3,
        files_total=10,
        bytes_done=300,
        bytes_total=1000,
        chunks_embedded=120,
        seconds=60.0,
        phase="embedding",
        current="/docs/sql-select.html",
        file_chunks=96,
        file_embedded=24,
    )
    doing, figures = describe(event)
    assert doing == "embedding sql-select.html (24/96 chunks)"
    assert "3/10 files" in figures and "120 chunks" in figures and "2.0 chunks/s" in figures
    assert "2:20 left" in figures  # 700 bytes to go at 300 bytes a minute
