"""What loaders produce and what the index keeps: documents made of structural blocks,
chunks with provenance, and search results that can cite their source."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

BlockKind: TypeAlias = Literal["heading", "paragraph", "list", "table", "code", "record"]
DocumentKind: TypeAlias = str
"""The loader's kind: pdf, docx, html, markdown, text, csv, json, or a plugin's."""
BLOCK_SEPARATOR = "\n\n"


@dataclass(frozen=True, slots=True)
class Block:
    """One structural unit of a document, in reading order.

    `level` is the heading level (1 = top) for headings; `page` the 1-based page for
    paged formats; `label` names a record ("row 12") for tabular formats.
    """

    kind: BlockKind
    text: str
    level: int = 0
    page: int | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """A loaded file. Its text is its blocks joined by `BLOCK_SEPARATOR`; chunk
    offsets count characters in that text."""

    source: str
    title: str
    kind: DocumentKind
    mtime: float
    size: int
    content_hash: str
    blocks: tuple[Block, ...]

    @property
    def text(self) -> str:
        return BLOCK_SEPARATOR.join(b.text for b in self.blocks)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document small enough to embed, with where it came from."""

    ordinal: int
    text: str
    start: int
    end: int
    tokens: int
    page: int | None = None
    headings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One retrieved chunk. `score` is what ranking and `min_score` use; `scores`
    keeps each method's own figure (bm25, dense, fused, rerank) for inspection."""

    chunk_id: int
    document_id: int
    source: str
    title: str
    kind: str
    text: str
    start: int
    end: int
    page: int | None
    headings: tuple[str, ...]
    score: float
    scores: dict[str, float] = field(default_factory=dict)
    tags: tuple[str, ...] = ()

    @property
    def citation(self) -> str:
        """Where the passage came from, for a person: file, then page or headings."""
        where = [self.source]
        if self.page is not None:
            where.append(f"page {self.page}")
        if self.headings:
            where.append(" › ".join(self.headings))
        return ", ".join(where)

    def snippet(self, width: int = 240) -> str:
        """The passage on one line, without Markdown markup, cut to `width`."""
        text = " ".join(plain_text(self.text).split())
        return text if len(text) <= width else text[: width - 1].rstrip() + "…"


_FENCE = re.compile(r"^\s*(```|~~~).*$", re.MULTILINE)
_HEADING_MARK = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_QUOTE_MARK = re.compile(r"^\s{0,3}>\s?", re.MULTILINE)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$", re.MULTILINE)
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![\w*])")
_CODE = re.compile(r"`([^`\n]+)`")
_MARK = re.compile(r"(\*\*|__|`)")


def plain_inline(text: str) -> str:
    """Inline Markdown left out, the words kept: a link as its text, the emphasis and
    code marks around words (`**x**`, `__x__`, `*x*`, `` `x` ``). A mark that pairs
    nothing stays (a lone `*` or `>` belongs to the text: "2 * 3", a table cell
    "> 50 users"), so a line of a passage (a quoted answer's unit, copilot/quote_units.py)
    reads as words without losing any."""
    text = _LINK.sub(r"\1", text)
    text = _STRONG.sub(r"\2", text)
    text = _EMPHASIS.sub(r"\1", text)
    return _CODE.sub(r"\1", text)


def plain_text(text: str) -> str:
    """Markdown markup (fences, heading marks, quote marks, table rules, then
    `plain_inline`'s, then any emphasis or code mark left unpaired) left out, for
    showing a passage to a person; the indexed text keeps it."""
    for pattern in (_FENCE, _TABLE_RULE, _HEADING_MARK, _QUOTE_MARK):
        text = pattern.sub("", text)
    return _MARK.sub("", plain_inline(text))
