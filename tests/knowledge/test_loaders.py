"""Loaders: each format keeps its structure (pages, headings, lists, tables, records)
and every document carries source, title, modification time and content hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pilothouse.knowledge import LoadError, load_file
from pilothouse.knowledge.documents import Document

from .conftest import CSV_TABLE, HTML_PAGE, MARKDOWN_PAGE, make_docx, make_pdf


def kinds(document: Document) -> list[tuple[str, str]]:
    return [(b.kind, b.text) for b in document.blocks]


def test_pdf_has_text_per_page_with_page_numbers(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "a.pdf", ["First page text.", "Second page text."], title="T1")
    document = load_file(path)
    assert document.kind == "pdf"
    assert document.title == "T1"
    pages = {b.page: b.text for b in document.blocks}
    assert "First page" in pages[1] and "Second page" in pages[2]
    data = path.read_bytes()
    assert document.content_hash == hashlib.sha256(data).hexdigest()
    assert document.size == len(data)
    assert document.mtime == path.stat().st_mtime
    assert document.source == str(path.absolute())


def test_docx_keeps_headings_lists_and_tables_in_order(tmp_path: Path) -> None:
    document = load_file(make_docx(tmp_path / "h.docx"))
    assert document.title == "Employee handbook"
    blocks = kinds(document)
    assert blocks[0] == ("heading", "Handbook")
    assert ("heading", "Holidays") in blocks
    assert (
        "list",
        "- Book holidays in the HR portal\n- Tell your manager two weeks ahead",
    ) in blocks
    table = next(text for kind, text in blocks if kind == "table")
    assert table.splitlines() == ["Grade | Days", "Junior | 25", "Senior | 30"]
    levels = {b.text: b.level for b in document.blocks if b.kind == "heading"}
    assert levels == {"Handbook": 1, "Holidays": 2, "Expenses": 2}
    # Order: the table comes after the Holidays heading and before Expenses.
    order = [text for _, text in blocks]
    assert order.index("Holidays") < order.index(table) < order.index("Expenses")


def test_html_keeps_main_content_and_headings_without_boilerplate(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(HTML_PAGE, encoding="utf-8")
    document = load_file(path)
    assert document.title == "Installing the widget"  # the h1 wins over <title>
    text = document.text
    assert "spirit level" in text and "blue wire" in text
    for boilerplate in ("Shop the widget store", "navigation banner", "Cookie settings"):
        assert boilerplate not in text
    headings = [(b.level, b.text) for b in document.blocks if b.kind == "heading"]
    assert headings == [(1, "Installing the widget"), (2, "Mounting"), (2, "Wiring")]


def test_markdown_blocks_and_front_matter_title(tmp_path: Path) -> None:
    path = tmp_path / "runbook.md"
    path.write_text(MARKDOWN_PAGE, encoding="utf-8")
    document = load_file(path)
    assert document.title == "Support runbook"
    blocks = kinds(document)
    assert ("heading", "Escalation") in blocks
    assert any(kind == "table" and "| P1 | 1 hour |" in text for kind, text in blocks)
    assert ("code", "```\nticket close --id 123\n```") in blocks
    assert not any("title:" in text for _, text in blocks)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Grüße aus Köln, café crème.".encode(), "Grüße aus Köln"),
        ("Grüße aus Köln, café crème. Ça coûte très cher.".encode("cp1252"), "Grüße aus Köln"),
        ("Grüße aus Köln.".encode("utf-16"), "Grüße aus Köln"),
    ],
    ids=["utf-8", "cp1252", "utf-16-bom"],
)
def test_text_encoding_is_detected(tmp_path: Path, raw: bytes, expected: str) -> None:
    path = tmp_path / "note.txt"
    path.write_bytes(raw)
    assert expected in load_file(path).text


def test_text_paragraphs_are_blocks(tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text("First paragraph\nstill first.\n\n\nSecond paragraph.\n", encoding="utf-8")
    assert kinds(load_file(path)) == [
        ("paragraph", "First paragraph\nstill first."),
        ("paragraph", "Second paragraph."),
    ]


def test_csv_rows_become_records_with_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(CSV_TABLE, encoding="utf-8")
    document = load_file(path)
    assert [(b.kind, b.label) for b in document.blocks] == [
        ("record", "row 2"),
        ("record", "row 3"),
    ]
    assert document.blocks[1].text == "name: Bob Jones\nrole: Office manager\nphone: 555-0102"


def test_semicolon_csv_and_tsv(tmp_path: Path) -> None:
    semi = tmp_path / "a.csv"
    semi.write_text("city;country\nOslo;Norway\nLyon;France\n", encoding="utf-8")
    assert load_file(semi).blocks[0].text == "city: Oslo\ncountry: Norway"
    tsv = tmp_path / "b.tsv"
    tsv.write_text("city\tcountry\nOslo\tNorway\n", encoding="utf-8")
    assert load_file(tsv).blocks[0].text == "city: Oslo\ncountry: Norway"


def test_json_array_object_and_json_lines(tmp_path: Path) -> None:
    array = tmp_path / "a.json"
    array.write_text(
        json.dumps([{"id": 1, "user": {"name": "Ann"}}, {"id": 2, "tags": ["x", "y"]}])
    )
    blocks = load_file(array).blocks
    assert [(b.label, b.text) for b in blocks] == [
        ("record 1", "id: 1\nuser.name: Ann"),
        ("record 2", "id: 2\ntags: x, y"),
    ]
    single = tmp_path / "b.json"
    single.write_text(json.dumps({"question": "Opening hours?", "answer": "9 to 5"}))
    assert load_file(single).blocks[0].text == "question: Opening hours?\nanswer: 9 to 5"
    lines = tmp_path / "c.jsonl"
    lines.write_text('{"q": "one"}\n\n{"q": "two"}\n')
    assert [(b.label, b.text) for b in load_file(lines).blocks] == [
        ("line 1", "q: one"),
        ("line 3", "q: two"),
    ]


def test_a_bad_json_line_fails_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"q": "one"}\n{"q": oops}\n')
    with pytest.raises(LoadError, match="line 2"):
        load_file(path)


def test_unsupported_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\r\n")
    with pytest.raises(LoadError, match=r"unsupported file type '\.png'"):
        load_file(path)
