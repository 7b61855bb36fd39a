"""Chunking respects structure, keeps provenance, and fits the token budget."""

from __future__ import annotations

import itertools
import random

import pytest

from pilothouse.knowledge import Chunker, ChunkingSettings
from pilothouse.knowledge.chunking import embedding_text
from pilothouse.knowledge.documents import Block, Document
from pilothouse.knowledge.tokens import ApproximateCounter

COUNTER = ApproximateCounter()


def doc(*blocks: Block, title: str = "Doc") -> Document:
    return Document("/x/doc.md", title, "markdown", 0.0, 1, "h", blocks)


def chunker(max_tokens: int = 40, overlap: int = 8) -> Chunker:
    return Chunker(ChunkingSettings(max_tokens, overlap, COUNTER.name), COUNTER)


def sentence(i: int) -> str:
    return f"Sentence number {i} says something about topic {i % 7}."


def test_chunk_text_is_exactly_the_document_text_at_its_offsets() -> None:
    rng = random.Random(7)
    for _ in range(30):
        blocks = []
        for _ in range(rng.randint(1, 12)):
            if rng.random() < 0.25:
                blocks.append(
                    Block("heading", f"Heading {rng.randint(1, 99)}", level=rng.randint(1, 3))
                )
            else:
                words = " ".join(
                    rng.choice(["alpha", "beta.", "gamma", "delta!"])
                    for _ in range(rng.randint(1, 120))
                )
                blocks.append(
                    Block(
                        rng.choice(["paragraph", "list", "table"]),
                        words,
                        page=rng.choice([None, 1, 2]),
                    )
                )
        document = doc(*blocks)
        text = document.text
        for chunk in chunker().chunk(document):
            assert chunk.text == text[chunk.start : chunk.end]
            assert chunk.tokens <= 40


def test_chunks_never_cross_headings_and_carry_the_heading_path() -> None:
    document = doc(
        Block("heading", "Guide", level=1),
        Block("paragraph", "Intro."),
        Block("heading", "Install", level=2),
        Block("paragraph", "Run the installer."),
        Block("heading", "Windows", level=3),
        Block("paragraph", "Use the MSI."),
        Block("heading", "Uninstall", level=2),
        Block("paragraph", "Remove it."),
    )
    chunks = chunker().chunk(document)
    assert [(c.text, c.headings) for c in chunks] == [
        ("Intro.", ("Guide",)),
        ("Run the installer.", ("Guide", "Install")),
        ("Use the MSI.", ("Guide", "Install", "Windows")),
        ("Remove it.", ("Guide", "Uninstall")),
    ]


def test_small_paragraphs_of_one_section_are_packed_together() -> None:
    document = doc(
        Block("heading", "A", level=1),
        Block("paragraph", "One."),
        Block("paragraph", "Two."),
        Block("paragraph", "Three."),
    )
    chunks = chunker().chunk(document)
    assert [c.text for c in chunks] == ["One.\n\nTwo.\n\nThree."]


def test_pages_are_never_mixed_in_one_chunk() -> None:
    document = doc(Block("paragraph", "Page one.", page=1), Block("paragraph", "Page two.", page=2))
    assert [(c.text, c.page) for c in chunker().chunk(document)] == [
        ("Page one.", 1),
        ("Page two.", 2),
    ]


def test_a_long_paragraph_is_split_into_overlapping_windows() -> None:
    text = " ".join(sentence(i) for i in range(40))
    chunks = chunker(max_tokens=40, overlap=12).chunk(doc(Block("paragraph", text)))
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.tokens <= 40
    for first, second in itertools.pairwise(chunks):
        assert second.start < first.end, "consecutive windows overlap"
        assert second.start > first.start
    # Together they cover the whole paragraph.
    assert chunks[0].start == 0 and chunks[-1].end == len(text)


def test_no_overlap_when_overlap_is_zero() -> None:
    text = " ".join(sentence(i) for i in range(40))
    chunks = chunker(max_tokens=40, overlap=0).chunk(doc(Block("paragraph", text)))
    for first, second in itertools.pairwise(chunks):
        assert second.start >= first.end


def test_a_big_table_is_split_between_rows() -> None:
    rows = [f"item {i} | price {i * 3} | stock {i * 7}" for i in range(60)]
    chunks = chunker(max_tokens=40, overlap=0).chunk(doc(Block("table", "\n".join(rows))))
    assert len(chunks) > 3
    for chunk in chunks:
        for line in chunk.text.split("\n"):
            assert line in rows, "no row is cut in half"


def test_one_enormous_word_is_cut_to_fit() -> None:
    blob = "x" * 5000
    chunks = chunker(max_tokens=32, overlap=0).chunk(doc(Block("paragraph", f"Key: {blob} end")))
    assert "".join(c.text for c in chunks).replace("Key: ", "").replace(" end", "") == blob
    assert all(c.tokens <= 32 for c in chunks)


def test_each_record_is_its_own_chunk_labelled() -> None:
    document = Document(
        "/x/p.csv",
        "people",
        "csv",
        0.0,
        1,
        "h",
        (Block("record", "name: Ann", label="row 2"), Block("record", "name: Bob", label="row 3")),
    )
    chunks = chunker().chunk(document)
    assert [(c.text, c.headings) for c in chunks] == [
        ("name: Ann", ("row 2",)),
        ("name: Bob", ("row 3",)),
    ]


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        ChunkingSettings(max_tokens=4)
    with pytest.raises(ValueError, match="overlap"):
        ChunkingSettings(max_tokens=100, overlap_tokens=60)


def test_embedding_text_carries_title_and_headings_once() -> None:
    assert embedding_text("Guide", ("Guide", "Install"), "Run it.") == "Guide › Install\nRun it."
    assert embedding_text("", (), "Run it.") == "Run it."


def test_no_chunk_is_a_lone_dot_or_code_fence_and_small_tails_join_their_neighbour() -> None:
    code = "```\n" + "\n".join(f"print({i}, 'value number {i}')" for i in range(12)) + "\n```"
    document = doc(
        Block("heading", "Setup", level=1),
        Block("code", code),
        Block("paragraph", "."),
        Block("heading", "Use", level=1),
        Block("paragraph", " ".join(sentence(i) for i in range(7)) + " Done."),
    )
    chunks = chunker(max_tokens=48, overlap=8).chunk(document)
    smallest = 48 // 16
    for chunk in chunks:
        assert chunk.text.strip() not in (".", "```")
        assert chunk.tokens >= smallest, chunk.text
        assert chunk.text == document.text[chunk.start : chunk.end]
    # The closing fence and the dot never stand alone; sections stay apart.
    assert {c.headings for c in chunks} == {("Setup",), ("Use",)}


def test_a_section_that_is_only_a_small_fragment_is_kept() -> None:
    document = doc(
        Block("heading", "See Also", level=2),
        Block("paragraph", "COPY"),
        Block("heading", "Next", level=2),
        Block("paragraph", " ".join(sentence(i) for i in range(3))),
    )
    chunks = chunker(max_tokens=48, overlap=8).chunk(document)
    assert (chunks[0].headings, chunks[0].text) == (("See Also",), "COPY")


def test_snippets_show_passages_without_markdown_markup() -> None:
    from pilothouse.knowledge import SearchResult

    text = "## Tools\n\n```\nticket close --id 123\n```\n\nSee **bold** and [the docs](http://x)."
    result = SearchResult(1, 1, "/x/doc.md", "Doc", "markdown", text, 0, len(text), None, (), 1.0)
    assert result.snippet() == "Tools ticket close --id 123 See bold and the docs."


def test_plain_text_leaves_out_block_and_inline_marks_plain_inline_only_inline() -> None:
    from pilothouse.knowledge.documents import plain_inline, plain_text

    text = "> Hold *Reset?* for **10 s**, see [docs](http://x) and `cfg`; a lone ** or __x"
    assert plain_text(text) == "Hold Reset? for 10 s, see docs and cfg; a lone  or x"
    assert plain_inline(text) == "> Hold Reset? for 10 s, see docs and cfg; a lone ** or __x"
    assert plain_inline("2 * 3 * 4, > 50 users") == "2 * 3 * 4, > 50 users"
