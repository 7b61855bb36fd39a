"""The knowledge-store suite: what every store of documents, chunks and vectors does
(today the SQLite `KnowledgeStore`, with its FTS5 index): one transaction per
document, filters, settings, and search over what was stored."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np

from pilothouse.knowledge.documents import Block, Chunk, Document
from pilothouse.knowledge.errors import IndexMismatchError
from pilothouse.knowledge.query import Filters
from pilothouse.knowledge.retrieval import Retriever, SearchOptions
from pilothouse.knowledge.store import KnowledgeStore
from pilothouse.knowledge.testing import HashingEmbedder
from pilothouse.testing.conformance.stores import PERSISTENT, THREADS, StoreSubject
from pilothouse.testing.conformance.suite import Suite, expect

KNOWLEDGE_STORES: Suite[StoreSubject[Any]] = Suite(
    "knowledge stores", "documents with their chunks and vectors, filters, search"
)

SEARCH = "search"  # keyword and vector search over the stored chunks (a `Retriever`)

Subject = StoreSubject[KnowledgeStore]
EMBEDDER = HashingEmbedder(dimensions=32)


def document(source: str, *texts: str, kind: str = "markdown", title: str = "") -> Document:
    blocks = tuple(Block("paragraph", t) for t in texts)
    return Document(source, title or source.rsplit("/", 1)[-1], kind, 1.0, 10, source, blocks)


def chunks_of(doc: Document) -> list[Chunk]:
    out, start = [], 0
    for ordinal, block in enumerate(doc.blocks):
        end = start + len(block.text)
        out.append(Chunk(ordinal, block.text, start, end, len(block.text.split()), 1, ("Intro",)))
        start = end + 2
    return out


def store_doc(store: KnowledgeStore, doc: Document, tags: tuple[str, ...] = ()) -> int:
    chunks = chunks_of(doc)
    vectors = np.asarray([EMBEDDER.vector(c.text) for c in chunks], dtype=np.float32)
    return store.replace_document(doc, tags, chunks, vectors)


@KNOWLEDGE_STORES.check()
async def check_a_document_round_trips_with_its_chunks_and_vectors(subject: Subject) -> None:
    """A stored document, its chunks (text, headings, page, offsets) and their vectors
    read back as they were written."""
    doc = document("/kb/vpn.md", "The VPN client is WireGuard 🔒.", "Ask the desk: 日本語.")
    with subject.opened() as store:
        doc_id = store_doc(store, doc, ("it",))
        row = store.document("/kb/vpn.md")
        assert row is not None and row.id == doc_id
        assert (row.title, row.kind, row.tags, row.chunk_count) == (
            "vpn.md",
            "markdown",
            ("it",),
            2,
        )
        assert row.content_hash == doc.content_hash
        chunks = store.chunks(store.chunk_ids(Filters()))
        texts = sorted(c.text for c in chunks.values())
        assert texts == sorted(b.text for b in doc.blocks)
        first = next(c for c in chunks.values() if c.text.startswith("The VPN"))
        assert (first.headings, first.page, first.start, first.source) == (
            ("Intro",),
            1,
            0,
            "/kb/vpn.md",
        )
        ids, matrix, _ = store.vectors()
        assert len(ids) == 2 and matrix.shape == (2, 32)
        by_id = dict(zip(ids.tolist(), matrix, strict=True))
        assert np.allclose(by_id[first.id], EMBEDDER.vector(first.text), atol=1e-6)
        assert store.check() == []


@KNOWLEDGE_STORES.check()
async def check_replacing_a_document_leaves_nothing_of_the_old_one(subject: Subject) -> None:
    """Storing a source again replaces its row, chunks and vectors entirely."""
    with subject.opened() as store:
        store_doc(store, document("/kb/a.md", "old one", "old two", "old three"))
        store_doc(store, document("/kb/a.md", "new text"))
        assert [d.source for d in store.documents()] == ["/kb/a.md"]
        texts = [c.text for c in store.chunks(store.chunk_ids(Filters())).values()]
        assert texts == ["new text"]
        assert store.vectors()[1].shape[0] == 1 and store.check() == []


@KNOWLEDGE_STORES.check()
async def check_removal_and_filters(subject: Subject) -> None:
    """Filters select by source pattern, kind and tag; removal takes chunks and vectors
    along."""
    with subject.opened() as store:
        store_doc(store, document("/kb/a.md", "alpha"), ("hr",))
        store_doc(store, document("/kb/b.pdf", "beta", kind="pdf"), ("it",))
        store_doc(store, document("/other/c.md", "gamma"), ("it",))

        def sources(filters: Filters) -> list[str]:
            return [d.source for d in store.documents(filters)]

        assert sources(Filters(sources=("/kb/*",))) == ["/kb/a.md", "/kb/b.pdf"]
        assert sources(Filters(kinds=("pdf",))) == ["/kb/b.pdf"]
        assert sources(Filters(tags=("it",))) == ["/kb/b.pdf", "/other/c.md"]
        assert len(store.chunk_ids(Filters(tags=("it",)))) == 2
        removed = store.remove_documents(d.id for d in store.documents(Filters(tags=("it",))))
        assert removed == 2 and sources(Filters()) == ["/kb/a.md"]
        assert store.vectors()[1].shape[0] == 1 and store.check() == []


@KNOWLEDGE_STORES.check()
async def check_every_change_moves_the_generation(subject: Subject) -> None:
    """The generation counter rises with every write, so caches know to reload."""
    with subject.opened() as store:
        seen = [store.generation()]
        doc_id = store_doc(store, document("/kb/a.md", "alpha"))
        seen.append(store.generation())
        store.touch_document(doc_id, 2.0, ("new",))
        seen.append(store.generation())
        store.remove_documents([doc_id])
        seen.append(store.generation())
        assert seen == sorted(set(seen)), seen


@KNOWLEDGE_STORES.check()
async def check_touch_changes_mtime_and_tags_only(subject: Subject) -> None:
    """Touching a document updates its time and tags and keeps its chunks."""
    with subject.opened() as store:
        doc_id = store_doc(store, document("/kb/a.md", "alpha", "beta"))
        store.touch_document(doc_id, 99.0, ("b", "a", "a"))
        row = store.document("/kb/a.md")
        assert row is not None and (row.mtime, row.tags, row.chunk_count) == (99.0, ("a", "b"), 2)
        assert len(store.chunk_ids(Filters())) == 2


@KNOWLEDGE_STORES.check()
async def check_index_settings_are_kept_and_mismatches_refused(subject: Subject) -> None:
    """The settings an index was built with are recorded once; other settings are
    refused; a reset forgets them and every document."""
    wanted = {"embedding_model": "test:hashing", "dimensions": 32}
    with subject.opened() as store:
        store.ensure_settings(wanted, reindex_hint="reindex")
        store.ensure_settings(dict(wanted), reindex_hint="reindex")
        with expect(IndexMismatchError, match="reindex"):
            store.ensure_settings({**wanted, "dimensions": 64}, reindex_hint="reindex")
        store_doc(store, document("/kb/a.md", "alpha"))
        store.reset()
        assert store.settings() is None and store.documents() == []


@KNOWLEDGE_STORES.check(SEARCH)
async def check_keyword_and_vector_search_find_what_was_stored(subject: Subject) -> None:
    """BM25, dense and hybrid search find a stored passage, filters narrow them, and a
    removed document is no longer found."""
    with subject.opened() as store:
        store_doc(store, document("/kb/vpn.md", "The VPN client is WireGuard on port 51820."))
        store_doc(store, document("/kb/print.md", "Printers are on floor three."), ("fm",))
        retriever = Retriever(store, EMBEDDER)
        for mode in ("bm25", "dense", "hybrid"):
            found = await retriever.search("WireGuard VPN client", SearchOptions(mode=mode, k=1))
            assert [r.source for r in found] == ["/kb/vpn.md"], (mode, found)
        narrowed = SearchOptions(mode="bm25", filters=Filters(tags=("fm",)))
        assert await retriever.search("WireGuard", narrowed) == []
        store.remove_documents(d.id for d in store.documents(Filters(sources=("/kb/vpn.md",))))
        found = await retriever.search("WireGuard", SearchOptions(mode="bm25"))
        assert all(r.source != "/kb/vpn.md" for r in found)


@KNOWLEDGE_STORES.check(THREADS)
async def check_writes_from_several_threads_stay_whole(subject: Subject) -> None:
    """Documents written from several threads at once are all stored whole."""
    with subject.opened() as store:

        def write(n: int) -> None:
            for i in range(5):
                store_doc(store, document(f"/kb/{n}-{i}.md", f"text {n} {i}", "second block"))

        threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            await asyncio.to_thread(thread.join)
        assert len(store.documents()) == 20
        assert len(store.chunk_ids(Filters())) == 40 and store.check() == []


@KNOWLEDGE_STORES.check(PERSISTENT)
async def check_documents_survive_reopening(subject: Subject) -> None:
    """A store opened again sees what an earlier one wrote."""
    with subject.opened() as store:
        store_doc(store, document("/kb/a.md", "alpha"))
    with subject.opened() as again:
        assert [d.source for d in again.documents()] == ["/kb/a.md"]
        assert again.check() == []
