"""DOCX through python-docx: headings (by paragraph style), lists and tables, in
reading order."""

from __future__ import annotations

import io
import re

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from pilothouse.knowledge.documents import Block
from pilothouse.knowledge.loaders.limits import check_zip, checkpoint

_HEADING = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)


def _heading_level(paragraph: Paragraph) -> int:
    name = (paragraph.style.name if paragraph.style is not None else "") or ""
    if name.lower() == "title":
        return 1
    match = _HEADING.match(name)
    return int(match.group(1)) if match else 0


def _is_list_item(paragraph: Paragraph) -> bool:
    name = (paragraph.style.name if paragraph.style is not None else "") or ""
    ppr = paragraph._p.pPr
    return "list" in name.lower() or (ppr is not None and ppr.numPr is not None)


def _table_text(table: Table) -> str:
    lines = []
    for row in table.rows:
        cells = [" ".join(cell.text.split()) for cell in row.cells]
        # Merged cells repeat; keep each distinct neighbour once.
        deduped = [c for i, c in enumerate(cells) if i == 0 or c != cells[i - 1]]
        if any(deduped):
            lines.append(" | ".join(deduped))
    return "\n".join(lines)


def parse_docx(data: bytes) -> tuple[str | None, list[Block]]:
    check_zip(data, "DOCX file")  # before python-docx unpacks every part into memory
    document = docx.Document(io.BytesIO(data))
    title = (document.core_properties.title or "").strip() or None
    blocks: list[Block] = []
    pending_list: list[str] = []

    def flush_list() -> None:
        if pending_list:
            blocks.append(Block("list", "\n".join(pending_list)))
            pending_list.clear()

    for item in document.iter_inner_content():
        checkpoint()
        if isinstance(item, Table):
            flush_list()
            text = _table_text(item)
            if text:
                blocks.append(Block("table", text))
            continue
        text = item.text.strip()
        if not text:
            continue
        level = _heading_level(item)
        if level:
            flush_list()
            blocks.append(Block("heading", text, level=level))
            if title is None and level == 1:
                title = text
        elif _is_list_item(item):
            pending_list.append(f"- {text}")
        else:
            flush_list()
            blocks.append(Block("paragraph", text))
    flush_list()
    return title, blocks
