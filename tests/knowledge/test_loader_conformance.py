"""Every built-in document loader passes the loader conformance suite, with a sample
of its format generated here."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pilothouse.knowledge.loaders import LOADERS as FORMATS
from pilothouse.testing.conformance import LOADERS, Check, LoaderSubject, run_check
from tests.knowledge.conftest import make_docx, make_pdf


def pdf(tmp: Path) -> bytes:
    return make_pdf(tmp / "s.pdf", ["Refunds are paid within 14 days.", "Page two."]).read_bytes()


def docx(tmp: Path) -> bytes:
    return make_docx(tmp / "s.docx").read_bytes()


TEXTS: dict[str, tuple[Callable[[Path], bytes], str]] = {
    "pdf": (pdf, "Refunds are paid within 14 days."),
    "docx": (docx, "Holidays"),
    "html": (
        lambda _: (
            b"<html><head><title>Guide</title></head><body><main><h1>Guide</h1>"
            b"<p>Wire the red lead to the live terminal.</p></main></body></html>"
        ),
        "Wire the red lead to the live terminal.",
    ),
    "markdown": (lambda _: b"# Runbook\n\nRestart the queue worker first.\n", "Restart the queue"),
    "text": (
        lambda _: "Plain notes, caf\u00e9 \u00e0 8h.\n\nSecond paragraph.".encode(),
        "caf\u00e9",
    ),
    "csv": (lambda _: b"name,phone\nBob Jones,555-0100\nAda,555-0101\n", "Bob Jones"),
    "tsv": (lambda _: b"name\tphone\nBob Jones\t555-0100\n", "Bob Jones"),
    "json": (lambda _: json.dumps([{"user": {"name": "Ann"}}]).encode(), "user.name: Ann"),
}
BINARY = {"pdf", "docx"}

CASES = [
    pytest.param(name, check, id=f"{name}-{check.name}")
    for name in sorted(TEXTS)
    for check in LOADERS.checks_for(
        frozenset({"installed", "binary"} if name in BINARY else {"installed"})
    )
]


@pytest.mark.parametrize(("name", "check"), CASES)
async def test_builtin_loader(name: str, check: Check[LoaderSubject], tmp_path: Path) -> None:
    make, text = TEXTS[name]
    capabilities = frozenset({"installed", "binary"} if name in BINARY else {"installed"})
    subject = LoaderSubject(FORMATS.get(name), make(tmp_path), text, capabilities)
    await run_check(check, subject)


def test_every_builtin_loader_has_a_sample() -> None:
    builtin = {info.name for info in FORMATS.infos() if info.builtin}
    assert builtin == set(TEXTS)


async def test_a_loader_that_reads_junk_as_text_fails_the_suite() -> None:
    from contextlib import asynccontextmanager

    from pilothouse.knowledge.documents import Block
    from pilothouse.knowledge.loaders import Loader

    def careless(data: bytes) -> tuple[str | None, list[Block]]:
        return None, [Block("paragraph", data.decode("latin-1"))]

    @asynccontextmanager
    async def subject():  # type: ignore[no-untyped-def]
        loader = Loader("careless", (".careless",), careless)
        yield LoaderSubject(loader, b"some text", capabilities=frozenset())

    report = await LOADERS.validate(subject)
    assert [name for name, _ in report.failed] == ["binary_junk_is_refused_with_a_clear_error"]
    assert "expected LoadError" in str(report)
