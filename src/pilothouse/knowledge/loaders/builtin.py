"""The built-in document formats, declared as `pilothouse.loaders` entry points in
Pilothouse's pyproject.toml. Each parser module (and its library: pypdf, python-docx,
lxml, ...) is imported when a file of its format is first read."""

from __future__ import annotations

from pilothouse.knowledge.documents import Block
from pilothouse.knowledge.loaders.formats import Loader


def _pdf(data: bytes) -> tuple[str | None, list[Block]]:
    from pilothouse.knowledge.loaders.pdf import parse_pdf

    return parse_pdf(data)


def _docx(data: bytes) -> tuple[str | None, list[Block]]:
    from pilothouse.knowledge.loaders.docx import parse_docx

    return parse_docx(data)


def _html(data: bytes) -> tuple[str | None, list[Block]]:
    from pilothouse.knowledge.loaders.html import parse_html

    return parse_html(data)


def _markdown(data: bytes) -> tuple[str | None, list[Block]]:
    from pilothouse.knowledge.loaders.markdown import parse_markdown

    return parse_markdown(data)


def _text(data: bytes) -> tuple[str | None, list[Block]]:
    from pilothouse.knowledge.loaders.text import parse_text

    return parse_text(data)


def _csv(data: bytes) -> tuple[str | None, list[Block]]:
    from pilothouse.knowledge.loaders.records import parse_csv

    return parse_csv(data)


def _tsv(data: bytes) -> tuple[str | None, list[Block]]:
    from pilothouse.knowledge.loaders.records import parse_csv

    return parse_csv(data, tab_separated=True)


def _json(data: bytes) -> tuple[str | None, list[Block]]:
    from pilothouse.knowledge.loaders.records import parse_json

    return parse_json(data)


PDF = Loader("pdf", (".pdf",), _pdf, "PDF, text per page (pypdf)")
DOCX = Loader("docx", (".docx",), _docx, "Word documents: headings, lists, tables")
HTML = Loader("html", (".html", ".htm", ".xhtml"), _html, "web pages: structure from the markup")
MARKDOWN = Loader("markdown", (".md", ".markdown"), _markdown, "CommonMark with tables")
TEXT = Loader("text", (".txt", ".text", ".rst", ".log"), _text, "plain text, any encoding")
CSV = Loader("csv", (".csv",), _csv, "one record per row")
TSV = Loader("csv", (".tsv",), _tsv, "tab-separated values, one record per row")
JSON = Loader("json", (".json", ".jsonl", ".ndjson"), _json, "one record per object")
