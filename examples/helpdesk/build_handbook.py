"""Build the PDF and DOCX parts of the helpdesk handbook from their source text.

    python examples/helpdesk/build_handbook.py            # writes into knowledge/
    python examples/helpdesk/build_handbook.py --out DIR  # writes somewhere else

The generated files are committed, so nobody needs to run this to use the demo; run
it after editing a file in `handbook-src/`. Needs `fpdf2` and `python-docx` (both in
Pilothouse's `dev` extra).

Source format (one block per line, blank lines end a paragraph):

    # Title                 the document title (first line)
    ## Heading              a section heading
    ### Subheading          a subsection heading
    - item                  a bulleted list item
    1. item                 a numbered list item
    | a | b | c |           a table row; the first row of a table is its header
    <<<page>>>              a page break
    anything else           paragraph text (consecutive lines are joined)

Output is deterministic (fixed creation dates and zip timestamps), so rebuilding an
unchanged source gives the same text and the same page breaks.
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE_DIR = HERE / "handbook-src"
KNOWLEDGE_DIR = HERE / "knowledge"
COMPANY = "Corvane Logistics"
BUILD_DATE = datetime(2026, 4, 1, 9, 0, 0, tzinfo=UTC)

# source file -> (output file, format)
OUTPUTS: dict[str, tuple[str, str]] = {
    "security-policy.txt": ("security-policy.pdf", "pdf"),
    "onboarding-guide.txt": ("onboarding-guide.pdf", "pdf"),
    "hardware-and-software-catalogue.txt": ("hardware-and-software-catalogue.docx", "docx"),
}


@dataclass
class Block:
    kind: str  # title, heading, subheading, paragraph, bullets, numbers, table, page
    text: str = ""
    items: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def parse_source(text: str) -> list[Block]:
    """The blocks of one source file, in order."""
    blocks: list[Block] = []
    paragraph: list[str] = []

    def end_paragraph() -> None:
        if paragraph:
            blocks.append(Block("paragraph", " ".join(paragraph)))
            paragraph.clear()

    def append_to(kind: str, item: str) -> None:
        if blocks and blocks[-1].kind == kind and not paragraph:
            blocks[-1].items.append(item)
        else:
            end_paragraph()
            blocks.append(Block(kind, items=[item]))

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            end_paragraph()
        elif line == "<<<page>>>":
            end_paragraph()
            blocks.append(Block("page"))
        elif line.startswith("### "):
            end_paragraph()
            blocks.append(Block("subheading", line[4:].strip()))
        elif line.startswith("## "):
            end_paragraph()
            blocks.append(Block("heading", line[3:].strip()))
        elif line.startswith("# "):
            end_paragraph()
            blocks.append(Block("title", line[2:].strip()))
        elif line.startswith("- "):
            append_to("bullets", line[2:].strip())
        elif line[:1].isdigit() and ". " in line[:4]:
            append_to("numbers", line.split(". ", 1)[1].strip())
        elif line.startswith("|"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if blocks and blocks[-1].kind == "table" and not paragraph:
                blocks[-1].rows.append(cells)
            else:
                end_paragraph()
                blocks.append(Block("table", rows=[cells]))
        else:
            paragraph.append(line)
    end_paragraph()
    if not blocks or blocks[0].kind != "title":
        raise ValueError("a handbook source must start with '# Title'")
    return blocks


# --- PDF ------------------------------------------------------------------------


def build_pdf(blocks: list[Block]) -> bytes:
    """A4 PDF; one page per `<<<page>>>` section. Raises if a section overflows its
    page, so the page numbers the evals cite stay true."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    title = blocks[0].text

    class Handbook(FPDF):
        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("helvetica", "", 8)
            self.set_text_color(110, 110, 110)
            self.cell(0, 10, f"Page {self.page_no()} of {{nb}}", align="C")
            self.set_text_color(0, 0, 0)

    pdf = Handbook(format="A4")
    pdf.set_title(title)
    pdf.set_author(f"{COMPANY} IT")
    pdf.set_creator("examples/helpdesk/build_handbook.py")
    pdf.set_creation_date(BUILD_DATE)
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    expected_pages = 1
    width = pdf.epw

    def text(content: str, style: str = "", size: float = 10.5, height: float = 5.2) -> None:
        pdf.set_font("helvetica", style, size)
        pdf.multi_cell(width, height, content, new_x="LMARGIN", new_y="NEXT")

    for block in blocks:
        if block.kind == "title":
            text(block.text, "B", 18, 9)
            pdf.ln(2)
        elif block.kind == "heading":
            pdf.ln(3)
            text(block.text, "B", 13, 7)
            pdf.ln(1)
        elif block.kind == "subheading":
            pdf.ln(2)
            text(block.text, "B", 11, 6)
        elif block.kind == "paragraph":
            text(block.text)
            pdf.ln(2)
        elif block.kind in ("bullets", "numbers"):
            for number, item in enumerate(block.items, start=1):
                marker = f"{number}." if block.kind == "numbers" else "-"
                pdf.set_font("helvetica", "", 10.5)
                pdf.cell(7, 5.2, marker)
                pdf.multi_cell(width - 7, 5.2, item, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        elif block.kind == "table":
            pdf.set_font("helvetica", "", 9.5)
            with pdf.table(
                line_height=5,
                headings_style=FontFace(emphasis="BOLD", fill_color=(225, 232, 240)),
                text_align="LEFT",
            ) as table:
                for row in block.rows:
                    table.row(row)
            pdf.ln(3)
        elif block.kind == "page":
            pdf.add_page()
            expected_pages += 1
    if pdf.page_no() != expected_pages:
        raise ValueError(
            f"{title}: {pdf.page_no()} pages instead of {expected_pages}; a section "
            "overflowed its page: shorten it or move a page break"
        )
    return bytes(pdf.output())


# --- DOCX -------------------------------------------------------------------------


def build_docx(blocks: list[Block]) -> bytes:
    """A Word document with real heading styles, lists and tables."""
    import docx
    from docx.shared import Pt

    document = docx.Document()
    props = document.core_properties
    props.title = blocks[0].text
    props.author = f"{COMPANY} IT"
    props.last_modified_by = f"{COMPANY} IT"
    props.created = BUILD_DATE.replace(tzinfo=None)
    props.modified = BUILD_DATE.replace(tzinfo=None)
    props.revision = 1
    document.styles["Normal"].font.name = "Calibri"
    document.styles["Normal"].font.size = Pt(11)

    for block in blocks:
        if block.kind == "title":
            document.add_heading(block.text, level=0)
        elif block.kind == "heading":
            document.add_heading(block.text, level=1)
        elif block.kind == "subheading":
            document.add_heading(block.text, level=2)
        elif block.kind == "paragraph":
            document.add_paragraph(block.text)
        elif block.kind in ("bullets", "numbers"):
            style = "List Number" if block.kind == "numbers" else "List Bullet"
            for item in block.items:
                document.add_paragraph(item, style=style)
        elif block.kind == "table":
            columns = max(len(row) for row in block.rows)
            table = document.add_table(rows=0, cols=columns)
            table.style = "Light Grid Accent 1"
            for index, row in enumerate(block.rows):
                cells = table.add_row().cells
                for cell, value in zip(cells, row, strict=False):
                    cell.text = value
                    if index == 0:
                        for run in cell.paragraphs[0].runs:
                            run.bold = True
        elif block.kind == "page":
            document.add_page_break()  # type: ignore[no-untyped-call]

    raw = io.BytesIO()
    document.save(raw)
    return _fixed_zip_times(raw.getvalue())


def _fixed_zip_times(data: bytes) -> bytes:
    """The same zip with every entry dated BUILD_DATE (python-docx stamps 'now')."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=BUILD_DATE.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            target.writestr(fixed, source.read(info.filename))
    return out.getvalue()


# --- main -----------------------------------------------------------------------------


def build(out_dir: Path) -> list[Path]:
    """Build every handbook document into `out_dir`; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source_name, (output_name, fmt) in OUTPUTS.items():
        blocks = parse_source((SOURCE_DIR / source_name).read_text(encoding="utf-8"))
        data = build_pdf(blocks) if fmt == "pdf" else build_docx(blocks)
        target = out_dir / output_name
        target.write_bytes(data)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=KNOWLEDGE_DIR, help="output folder")
    args = parser.parse_args(argv)
    for path in build(args.out):
        sys.stdout.write(f"wrote {path} ({path.stat().st_size} bytes)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
