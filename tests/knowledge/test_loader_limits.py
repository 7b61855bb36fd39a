"""The per-file budget of the loaders: a DOCX zip bomb fails fast and in bounded memory
with a reason naming the file; time and text budgets; ordinary files unaffected."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from pilothouse.knowledge import FileOutcome, IngestOptions, KnowledgeBase
from pilothouse.knowledge.errors import LoadError
from pilothouse.knowledge.loaders import LoaderLimits, check_zip, load_file
from pilothouse.knowledge.loaders.limits import Budget, BudgetExceededError, budget, checkpoint
from pilothouse.knowledge.testing import HashingEmbedder
from tests.bombs import docx_bomb, run_capped

from .conftest import make_docx, make_pdf

MEMORY_CAP = 1200 * 2**20


def test_a_docx_bomb_is_refused_naming_the_file_and_the_member(tmp_path: Path) -> None:
    path = tmp_path / "report.docx"
    path.write_bytes(docx_bomb(40 * 2**20))  # 40 MiB of text in about 40 KB
    assert path.stat().st_size < 100_000
    with pytest.raises(LoadError) as caught:
        load_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "word/document.xml" in message and "zip bomb" in message


def test_the_bomb_is_refused_within_a_memory_cap(tmp_path: Path) -> None:
    """Before the limits a 0.95 MB DOCX took past 3 GiB in 26 s; a 0.3 MB one (300 MiB
    of text) is refused here by a child process capped at 1.2 GiB of address space."""
    path = tmp_path / "bomb.docx"
    path.write_bytes(docx_bomb(300 * 2**20))
    assert path.stat().st_size < 400_000
    printed = run_capped(
        """
        from pathlib import Path
        from pilothouse.knowledge.errors import LoadError
        from pilothouse.knowledge.loaders import load_file
        try:
            load_file(Path(sys.argv[1]))
        except LoadError as exc:
            print("refused:", exc)
        """,
        str(path),
        MEMORY_CAP,
    )
    assert "bomb.docx" in printed and "zip bomb" in printed


async def _ingest(
    tmp_path: Path, sources: list[Path], options: IngestOptions | None = None
) -> dict[str, FileOutcome]:
    """Ingests `sources` into a fresh knowledge base: each file's outcome by its name."""
    kb = KnowledgeBase(tmp_path / "kb.sqlite3", HashingEmbedder())
    try:
        report = await kb.add([str(s) for s in sources], options=options)
    finally:
        kb.close()
    return {Path(o.source).name: o for o in report.outcomes}


async def test_ingestion_reports_the_bomb_and_indexes_the_rest(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/bomb.docx").write_bytes(docx_bomb(40 * 2**20))
    make_docx(tmp_path / "docs/handbook.docx")
    by_name = await _ingest(tmp_path, [tmp_path / "docs"])
    assert by_name["handbook.docx"].status == "added"
    assert by_name["bomb.docx"].status == "failed"
    assert "zip bomb" in by_name["bomb.docx"].reason


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("limits", "members", "expected"),
    [
        (LoaderLimits(max_members=3), {f"f{i}": b"x" for i in range(4)}, "4 entries"),
        (LoaderLimits(max_member_bytes=2**20), {"big": b"\0" * (2**20 + 1)}, "for one member"),
        (
            LoaderLimits(max_unpacked_bytes=3 * 2**20),
            {"a": os.urandom(2**21), "b": os.urandom(2**21)},
            "unpacks to more",
        ),
        (LoaderLimits(), {"bomb": b"\0" * (4 * 2**20)}, "expands"),
    ],
)
def test_zip_limits(limits: LoaderLimits, members: dict[str, bytes], expected: str) -> None:
    with budget(limits), pytest.raises(BudgetExceededError, match=expected):
        check_zip(_zip(members), "archive")


def test_ordinary_archives_pass() -> None:
    # well-compressible but small members, and a big member that does not compress
    check_zip(_zip({"small": b"\0" * 500_000, "photo.png": os.urandom(3 * 2**20)}))
    check_zip(b"not a zip at all")  # left for the parser to call damaged


def test_the_time_budget_is_checked_between_units_of_work() -> None:
    now = [0.0]
    running = Budget(LoaderLimits(max_seconds=10), clock=lambda: now[0])
    running.check_time()
    now[0] = 10.5
    with pytest.raises(BudgetExceededError, match="10 s budget"):
        running.check_time()
    checkpoint()  # outside a budget: nothing to check


def test_a_pdf_over_the_time_budget_fails_naming_the_file(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "manual.pdf", [f"Page {n} text." for n in range(5)])
    with pytest.raises(LoadError, match=r"manual\.pdf: reading it took longer than the 0 s"):
        load_file(path, limits=LoaderLimits(max_seconds=0))
    assert load_file(path).kind == "pdf"


async def test_the_text_budget_fails_the_file_and_not_the_run(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("word " * 5_000)
    (tmp_path / "small.txt").write_text("A short note.")
    options = IngestOptions(loader_limits=LoaderLimits(max_text_chars=1_000))
    by_name = await _ingest(tmp_path, [tmp_path / "big.txt", tmp_path / "small.txt"], options)
    assert by_name["small.txt"].status == "added"
    assert by_name["big.txt"].status == "failed"
    assert "more than 1,000 characters of text" in by_name["big.txt"].reason
