"""Fixtures for the knowledge tests: real files generated on the fly (no binary
fixtures in git), and knowledge bases over the deterministic hashing embedder."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import docx
import pytest
from fpdf import FPDF
from pypdf import PdfWriter

from pilothouse.knowledge import KnowledgeBase
from pilothouse.knowledge.testing import HashingEmbedder


def make_pdf(path: Path, pages: list[str], title: str | None = None) -> Path:
    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))
    return path


def make_encrypted_pdf(path: Path, text: str = "Secret salary table.") -> Path:
    plain = io.BytesIO()
    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 6, text)
    pdf.output(plain)
    writer = PdfWriter(clone_from=io.BytesIO(plain.getvalue()))
    writer.encrypt(user_password="open-sesame", owner_password="owner", algorithm="AES-256")
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def make_docx(path: Path) -> Path:
    document = docx.Document()
    document.core_properties.title = "Employee handbook"
    document.add_heading("Handbook", 1)
    document.add_paragraph("Welcome to the company. Read this first.")
    document.add_heading("Holidays", 2)
    document.add_paragraph("Employees get 25 days of paid holiday per year.")
    document.add_paragraph("Book holidays in the HR portal", style="List Bullet")
    document.add_paragraph("Tell your manager two weeks ahead", style="List Bullet")
    table = document.add_table(rows=3, cols=2)
    for row, (grade, days) in enumerate([("Grade", "Days"), ("Junior", "25"), ("Senior", "30")]):
        table.cell(row, 0).text = grade
        table.cell(row, 1).text = days
    document.add_heading("Expenses", 2)
    document.add_paragraph("Expense claims are paid within ten working days.")
    document.save(str(path))
    return path


HTML_PAGE = """<!doctype html><html><head><title>Widget install guide</title></head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/shop">Shop the widget store</a></li>
<li><a href="/blog">Blog</a></li></ul></nav>
<header><div class="brand">ACME Corporation navigation banner</div></header>
<main><article>
<h1>Installing the widget</h1>
<p>The widget installs in three steps. First unpack the crate and check its contents
against the packing list that comes with it.</p>
<h2>Mounting</h2>
<p>Bolt the frame to the wall with the four supplied bolts and tighten them to 10 Nm.
Use a spirit level so that the widget hangs straight.</p>
<h2>Wiring</h2>
<p>Connect the blue wire to the neutral terminal and the brown wire to the live
terminal. Switch off the mains before you start.</p>
</article></main>
<footer>Copyright 2024 ACME. Privacy policy. Terms of use. Cookie settings.</footer>
</body></html>
"""

MARKDOWN_PAGE = """---
title: Support runbook
---
# Support runbook

How the support team handles tickets.

## Escalation

Tickets open for more than 48 hours are escalated to the duty manager.

| Priority | Response time |
|---|---|
| P1 | 1 hour |
| P2 | 8 hours |

## Tools

```
ticket close --id 123
```
"""

CSV_TABLE = "name,role,phone\nAlice Smith,Engineer,555-0101\nBob Jones,Office manager,555-0102\n"


def mixed_folder(root: Path) -> Path:
    """A folder of mixed PDF, DOCX, HTML, Markdown and CSV files."""
    root.mkdir(parents=True, exist_ok=True)
    make_pdf(
        root / "policy.pdf",
        [
            "Refund policy. Customers may return goods within 30 days. "
            "Refunds are paid within 14 days of receiving the goods.",
            "Shipping. We ship to Norway, Sweden and Denmark. Delivery takes 3 to 5 days.",
        ],
        title="Customer policy",
    )
    make_docx(root / "handbook.docx")
    (root / "install.html").write_text(HTML_PAGE, encoding="utf-8")
    (root / "runbook.md").write_text(MARKDOWN_PAGE, encoding="utf-8")
    (root / "people.csv").write_text(CSV_TABLE, encoding="utf-8")
    return root


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def kb(tmp_path: Path, embedder: HashingEmbedder) -> Iterator[KnowledgeBase]:
    base = KnowledgeBase(tmp_path / "kb.sqlite3", embedder)
    yield base
    base.close()
