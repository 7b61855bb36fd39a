"""Bad input is reported per file with a reason, the rest of the ingestion goes on,
and nothing of a bad file is indexed."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path

import pytest
from fpdf import FPDF
from pypdf import PdfWriter

from pilothouse.knowledge import IngestOptions, KnowledgeBase
from pilothouse.knowledge.testing import HashingEmbedder

from .conftest import make_encrypted_pdf, make_pdf


def reasons(report: object) -> dict[str, tuple[str, str]]:
    return {Path(o.source).name: (o.status, o.reason) for o in report.outcomes}  # type: ignore[attr-defined]


async def test_each_bad_file_is_reported_and_the_good_ones_indexed(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nThe good document mentions zebras.\n")
    make_pdf(folder / "good.pdf", ["A readable PDF about giraffes."])
    corrupt = make_pdf(tmp_path / "whole.pdf", ["This PDF will be cut short."]).read_bytes()
    (folder / "corrupt.pdf").write_bytes(corrupt[: len(corrupt) // 3])
    (folder / "garbage.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(2000))
    make_encrypted_pdf(folder / "encrypted.pdf")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 64)
    with (folder / "huge.txt").open("wb") as handle:  # sparse: no disk space used
        handle.truncate(200 * 1024 * 1024)
    os.symlink(folder / "loop_b.md", folder / "loop_a.md")
    os.symlink(folder / "loop_a.md", folder / "loop_b.md")
    (folder / "sub").mkdir()
    os.symlink(folder, folder / "sub" / "back")  # a folder loop
    blank = FPDF()
    blank.add_page()
    blank.output(str(folder / "scanned.pdf"))
    (folder / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    (folder / "bad.json").write_text('{"a": 1,,}')

    report = await kb.add([str(folder)], options=IngestOptions(max_file_bytes=50 * 2**20))

    found = reasons(report)
    assert found["good.md"][0] == "added"
    assert found["good.pdf"][0] == "added"
    expected = {
        "corrupt.pdf": "damaged or not a valid PDF",
        "garbage.pdf": "damaged or not a valid PDF",
        "encrypted.pdf": "encrypted PDF that needs a password",
        "empty.txt": "empty file",
        "binary.txt": "binary content",
        "huge.txt": "200.0 MiB, over the 50 MiB limit",
        "loop_a.md": "symbolic link loop",
        "loop_b.md": "symbolic link loop",
        "back": "symbolic link loop",
        "scanned.pdf": "no text found",
        "broken.docx": "damaged or not a valid DOCX",
        "bad.json": "damaged or not a valid JSON",
    }
    for name, reason in expected.items():
        status, said = found[name]
        assert status == "failed", name
        assert reason in said, (name, said)
    # Nothing of a bad file is in the index, and the index is whole.
    assert sorted(Path(d.source).name for d in kb.documents()) == ["good.md", "good.pdf"]
    assert kb.store.check() == []
    results = await kb.search("zebras")
    assert results and results[0].source.endswith("good.md")


async def test_a_pdf_with_an_empty_user_password_opens(tmp_path: Path) -> None:
    plain = make_pdf(tmp_path / "p.pdf", ["Owner-protected but readable text."])
    writer = PdfWriter(clone_from=str(plain))
    writer.encrypt(user_password="", owner_password="owner-only", algorithm="AES-128")
    with (tmp_path / "locked.pdf").open("wb") as handle:
        writer.write(handle)
    base = KnowledgeBase(tmp_path / "kb.sqlite3", HashingEmbedder())
    report = await base.add([str(tmp_path / "locked.pdf")])
    assert report.count("added") == 1
    base.close()


async def test_a_named_file_that_does_not_exist_is_reported(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    report = await kb.add([str(tmp_path / "nope.md")])
    assert [(o.status, o.reason) for o in report.outcomes] == [("failed", "not found")]


async def test_a_named_file_of_unsupported_type_is_reported(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    report = await kb.add([str(tmp_path / "photo.jpg")])
    assert report.outcomes[0].status == "failed"
    assert "unsupported file type '.jpg'" in report.outcomes[0].reason


async def test_unsupported_files_inside_a_folder_are_skipped_not_failed(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    (tmp_path / "d" / "a.md").write_text("Alpha text.")
    report = await kb.add([str(tmp_path / "d")])
    assert report.count("skipped") == 1 and report.count("added") == 1 and not report.failures


def _ingest_as_nobody(folder: str, database: str) -> dict[str, list[str]]:
    """Run an ingestion in a forked child that dropped root privileges, so file
    permissions apply (root reads everything). Returns the child's findings."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(read_end)
            os.setgid(65534)
            os.setuid(65534)
            base = KnowledgeBase(Path(database), HashingEmbedder())
            report = asyncio.run(base.add([folder]))
            found = {Path(o.source).name: [o.status, o.reason] for o in report.outcomes}
            found["__documents__"] = [Path(d.source).name for d in base.documents()]
            found["__check__"] = base.store.check()
            base.close()
            os.write(write_end, json.dumps(found).encode())
        except BaseException as exc:  # report anything to the parent
            os.write(write_end, json.dumps({"__error__": [repr(exc)]}).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    while data := os.read(read_end, 65536):
        chunks.append(data)
    os.close(read_end)
    os.waitpid(pid, 0)
    result: dict[str, list[str]] = json.loads(b"".join(chunks))
    return result


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to drop privileges")
def test_an_unreadable_file_is_reported_and_the_rest_indexed() -> None:
    root = Path(tempfile.mkdtemp(prefix="ph-perm-"))
    try:
        root.chmod(0o777)
        folder = root / "docs"
        folder.mkdir()
        folder.chmod(0o777)
        (folder / "open.md").write_text("Readable notes about otters.")
        secret = folder / "secret.md"
        secret.write_text("Nobody may read this.")
        secret.chmod(0o000)
        for path in (folder / "open.md",):
            path.chmod(0o644)
        if os.geteuid() == 0:
            found = _ingest_as_nobody(str(folder), str(root / "kb.sqlite3"))
        else:
            base = KnowledgeBase(root / "kb.sqlite3", HashingEmbedder())
            report = asyncio.run(base.add([str(folder)]))
            found = {Path(o.source).name: [o.status, o.reason] for o in report.outcomes}
            found["__documents__"] = [Path(d.source).name for d in base.documents()]
            found["__check__"] = base.store.check()
            base.close()
        assert "__error__" not in found, found
        assert found["open.md"][0] == "added"
        assert found["secret.md"][0] == "failed"
        assert "permission denied" in found["secret.md"][1]
        assert found["__documents__"] == ["open.md"]
        assert found["__check__"] == []
    finally:
        for path in sorted(root.rglob("*"), reverse=True):
            path.chmod(0o700) if path.is_dir() else path.chmod(0o600)
        import shutil

        shutil.rmtree(root)
