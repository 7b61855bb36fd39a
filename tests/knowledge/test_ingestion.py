"""Incremental ingestion: only what changed is re-embedded, deleted files leave the
index, settings mismatches are refused, and a kill -9 leaves a consistent index."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pilothouse.knowledge import (
    ChunkingSettings,
    IndexMismatchError,
    IngestOptions,
    KnowledgeBase,
    SearchOptions,
)
from pilothouse.knowledge.testing import HashingEmbedder

from .conftest import mixed_folder


async def test_mixed_folder_ingests_and_results_cite_file_and_place(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    folder = mixed_folder(tmp_path / "docs")
    report = await kb.add([str(folder)])
    assert report.count("added") == 5 and not report.failures
    refund = (await kb.search("refunds paid within days"))[0]
    assert refund.source == str(folder / "policy.pdf") and refund.page == 1
    assert refund.citation == f"{folder / 'policy.pdf'}, page 1"
    holiday = (await kb.search("paid holiday days per year"))[0]
    assert holiday.source.endswith("handbook.docx")
    assert holiday.headings == ("Handbook", "Holidays")
    wiring = (await kb.search("blue wire neutral terminal"))[0]
    assert wiring.headings == ("Installing the widget", "Wiring")
    escalation = (await kb.search("tickets escalated duty manager"))[0]
    assert escalation.headings == ("Support runbook", "Escalation")
    bob = (await kb.search("Bob Jones phone"))[0]
    assert bob.source.endswith("people.csv") and bob.headings == ("row 3",)


async def test_rerun_skips_unchanged_and_reembeds_only_changed_chunks(
    tmp_path: Path, kb: KnowledgeBase, embedder: HashingEmbedder
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    page = folder / "faq.md"
    page.write_text("# FAQ\n\n## Hours\n\nOpen nine to five.\n\n## Parking\n\nParking is free.\n")
    (folder / "other.md").write_text("Other document text.")
    first = await kb.add([str(folder)])
    assert first.count("added") == 2 and first.embedded_chunks == 3
    embedder.calls.clear()

    second = await kb.add([str(folder)])
    assert second.count("unchanged") == 2
    assert embedder.calls == []

    # Same bytes, new modification time: read and hashed, not re-embedded.
    os.utime(page, (time.time() + 10, time.time() + 10))
    third = await kb.add([str(folder)])
    assert third.count("unchanged") == 2 and embedder.calls == []

    # One section changed: only its chunk is embedded again (the other is cached).
    page.write_text("# FAQ\n\n## Hours\n\nOpen nine to six.\n\n## Parking\n\nParking is free.\n")
    fourth = await kb.add([str(folder)])
    assert fourth.count("updated") == 1 and fourth.count("unchanged") == 1
    assert embedder.embedded_texts == ["FAQ › Hours\nOpen nine to six."]
    top = await kb.search("nine to six")
    assert top[0].text == "Open nine to six."
    assert kb.store.check() == []


async def test_deleted_files_are_removed_from_the_index(tmp_path: Path, kb: KnowledgeBase) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "keep.md").write_text("Keep me, I talk about llamas.")
    (folder / "sub" / "gone.md").write_text("Delete me, I talk about alpacas.")
    await kb.add([str(folder)])
    (folder / "sub" / "gone.md").unlink()
    report = await kb.add([str(folder)])
    assert [(Path(o.source).name, o.status) for o in report.outcomes if o.status == "removed"] == [
        ("gone.md", "removed")
    ]
    assert [Path(d.source).name for d in kb.documents()] == ["keep.md"]
    assert all("alpacas" not in r.text for r in await kb.search("alpacas"))
    # A whole folder that disappeared: its documents go too.
    (folder / "keep.md").unlink()
    (folder / "sub").rmdir()
    folder.rmdir()
    report = await kb.add([str(folder)])
    assert report.count("removed") == 1 and kb.documents() == []


async def test_globs_add_and_remove_only_what_they_cover(tmp_path: Path, kb: KnowledgeBase) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("Alpha.")
    (folder / "b.md").write_text("Beta.")
    (folder / "c.txt").write_text("Gamma.")
    report = await kb.add([str(folder / "*.md")])
    assert report.count("added") == 2
    await kb.add([str(folder / "c.txt")])
    (folder / "a.md").unlink()
    report = await kb.add([str(folder / "*.md")])
    assert report.count("removed") == 1
    assert sorted(Path(d.source).name for d in kb.documents()) == ["b.md", "c.txt"]


async def test_keep_missing_leaves_deleted_files_indexed(tmp_path: Path, kb: KnowledgeBase) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.md").write_text("Alpha.")
    await kb.add([str(tmp_path / "d")])
    (tmp_path / "d" / "a.md").unlink()
    await kb.add([str(tmp_path / "d")], options=IngestOptions(remove_missing=False))
    assert len(kb.documents()) == 1


async def test_tags_are_stored_and_changing_them_costs_no_embedding(
    tmp_path: Path, kb: KnowledgeBase, embedder: HashingEmbedder
) -> None:
    (tmp_path / "a.md").write_text("Alpha.")
    await kb.add([str(tmp_path / "a.md")], options=IngestOptions(tags=("hr",)))
    embedder.calls.clear()
    await kb.add([str(tmp_path / "a.md")], options=IngestOptions(tags=("hr", "public")))
    assert kb.documents()[0].tags == ("hr", "public")
    assert embedder.calls == []


async def test_another_embedding_model_is_refused_until_reindex(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("Alpha document about owls.")
    path = tmp_path / "kb.sqlite3"
    first = KnowledgeBase(path, HashingEmbedder(dimensions=64, model_id="test:one"))
    await first.add([str(tmp_path / "a.md")])
    first.close()

    other = KnowledgeBase(path, HashingEmbedder(dimensions=32, model_id="test:two"))
    with pytest.raises(IndexMismatchError) as caught:
        await other.search("owls")
    message = str(caught.value)
    assert "test:one" in message and "test:two" in message and "--reindex" in message
    with pytest.raises(IndexMismatchError):
        await other.add([str(tmp_path / "a.md")])
    report = await other.add([str(tmp_path / "a.md")], reindex=True)
    assert report.count("added") == 1
    assert (await other.search("owls"))[0].source.endswith("a.md")
    other.close()


async def test_a_chunking_change_is_refused_until_reindex(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("Alpha.")
    path = tmp_path / "kb.sqlite3"
    first = KnowledgeBase(path, HashingEmbedder())
    await first.add([str(tmp_path / "a.md")])
    first.close()
    counter_name = "approx-words"
    second = KnowledgeBase(
        path, HashingEmbedder(), chunking=ChunkingSettings(max_tokens=100, tokenizer=counter_name)
    )
    with pytest.raises(IndexMismatchError, match="chunking"):
        await second.add([str(tmp_path / "a.md")])
    second.close()


def _committed_documents(database: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def test_kill_9_mid_ingest_leaves_a_consistent_index_and_rerun_completes(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(40):
        sections = "\n\n".join(f"## Part {j}\n\nDocument {i} part {j} text." for j in range(3))
        (folder / f"doc{i:02}.md").write_text(f"# Doc {i}\n\n{sections}\n")
    database = tmp_path / "kb.sqlite3"
    worker = Path(__file__).with_name("slow_ingest.py")
    process = subprocess.Popen(
        [sys.executable, str(worker), str(database), str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while _committed_documents(database) < 5:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    done_before = _committed_documents(database)
    assert 5 <= done_before < 40, "killed half-way"

    embedder = HashingEmbedder()
    base = KnowledgeBase(database, embedder)
    assert base.store.check() == []  # every committed document is whole
    for row in base.documents():
        assert row.chunk_count == 3
    report = asyncio.run(base.add([str(folder)]))
    assert report.count("unchanged") == done_before
    assert report.count("added") == 40 - done_before
    assert not report.failures
    assert base.store.check() == []
    assert len(base.documents()) == 40
    assert base.stats()["chunks"] == 120
    base.close()


async def test_a_file_that_turns_bad_keeps_its_last_good_version(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    page = folder / "notes.txt"
    page.write_text("Quarterly numbers are in the finance folder.")
    await kb.add([str(folder)])
    page.write_bytes(bytes(range(256)) * 8)  # overwritten with binary garbage
    report = await kb.add([str(folder)])
    assert [(o.status, o.reason.split(",")[0]) for o in report.outcomes] == [
        ("failed", "binary content")
    ]
    (kept,) = await kb.search(
        "finance folder",
    )
    assert kept.text == "Quarterly numbers are in the finance folder."
    assert kb.store.check() == []


async def test_a_missing_path_is_reported_even_when_keeping_missing(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    report = await kb.add([str(tmp_path / "gone")], options=IngestOptions(remove_missing=False))
    assert [(o.status, o.reason) for o in report.outcomes] == [("failed", "not found")]


async def test_the_consistency_check_notices_a_damaged_index(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    (tmp_path / "a.md").write_text("Hello world.")
    await kb.add([str(tmp_path / "a.md")])
    assert kb.store.check() == []
    conn = kb.store.conn
    conn.execute("INSERT INTO chunks_fts (rowid, text, context) VALUES (999, 'stray', '')")
    assert any("full-text index" in p for p in kb.store.check())
    conn.execute("DROP TRIGGER chunks_fts_delete")
    conn.execute("DELETE FROM chunks")
    assert any("0 chunks stored, 1 expected" in p for p in kb.store.check())


async def test_a_document_from_a_url_is_indexed_and_cited_by_its_url(kb: KnowledgeBase) -> None:
    from pilothouse.knowledge.documents import Block, Document

    page = Document(
        source="https://intranet.example/travel",
        title="Travel policy",
        kind="html",
        mtime=0.0,
        size=120,
        content_hash="abc",
        blocks=(
            Block("heading", "Travel policy", level=1),
            Block("heading", "Trains", level=2),
            Block("paragraph", "Book first class for journeys over three hours."),
        ),
    )
    assert await kb.add_document(page, tags=("travel",)) == 1
    (hit,) = await kb.search("first class train journeys", SearchOptions(k=1))
    assert hit.citation == "https://intranet.example/travel, Travel policy › Trains"
    assert hit.tags == ("travel",)


async def test_progress_names_the_file_being_embedded_with_chunk_counts(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    from pilothouse.knowledge import IngestProgress

    folder = tmp_path / "docs"
    folder.mkdir()
    sections = "\n\n".join(
        f"## Part {i}\n\nPart {i} explains topic {i} in detail." for i in range(40)
    )
    (folder / "big.md").write_text(f"# Big\n\n{sections}\n")
    (folder / "small.md").write_text("# Small\n\nOne line.\n")
    events: list[IngestProgress] = []
    await kb.add([str(folder)], options=IngestOptions(embed_batch_size=8), progress=events.append)
    big = str(folder / "big.md")
    embedding = [e for e in events if e.phase == "embedding" and e.current == big]
    # The big file is named while it is embedded, batch by batch, before it is done.
    assert [e.file_embedded for e in embedding] == [0, 8, 16, 24, 32, 40]
    assert all(e.file_chunks == 40 for e in embedding)
    done = next(i for i, e in enumerate(events) if e.outcome and e.outcome.source == big)
    assert events.index(embedding[-1]) < done and events[done].current is None
    assert events[-1].files_done == 2 and events[-1].chunks_embedded == 41
    assert events[-1].bytes_done == events[-1].bytes_total > 0
    assert all(e.seconds_left is None or e.seconds_left >= 0 for e in events)
