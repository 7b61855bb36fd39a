"""Structure-aware chunking with provenance.

A chunk never crosses a heading, a page, or a record: each stays inside one section
(the blocks under one heading path on one page). Inside a section, whole blocks are
packed up to `max_tokens`; a block larger than that is split at sentence (or line, for
tables, lists and code) boundaries into windows that overlap by about
`overlap_tokens`. Every chunk's text is exactly `document.text[start:end]`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from pilothouse.knowledge.documents import BLOCK_SEPARATOR, Block, Chunk, Document
from pilothouse.knowledge.tokens import TokenCounter

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")
_WORD = re.compile(r"\S+")
_WORDLIKE = re.compile(r"\w")


@dataclass(frozen=True, slots=True)
class ChunkingSettings:
    """Recorded in the index: changing them asks for a re-index."""

    max_tokens: int = 200
    overlap_tokens: int = 32
    tokenizer: str = ""

    def __post_init__(self) -> None:
        if self.max_tokens < 16:
            raise ValueError("max_tokens must be at least 16")
        if not 0 <= self.overlap_tokens < self.max_tokens // 2:
            raise ValueError("overlap_tokens must be between 0 and half of max_tokens")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(slots=True)
class _Piece:
    start: int
    end: int
    tokens: int


def _units(text: str, base: int, block: Block) -> list[tuple[int, int]]:
    """(start, end) spans of the sentences (or lines) of a block, absolute offsets."""
    splitter = re.compile(r"\n") if block.kind in ("table", "list", "code") else _SENTENCE_END
    spans, cursor = [], 0
    for match in splitter.finditer(text):
        if match.start() > cursor:
            spans.append((base + cursor, base + match.start()))
        cursor = match.end()
    if cursor < len(text):
        spans.append((base + cursor, base + len(text)))
    return spans


class Chunker:
    def __init__(self, settings: ChunkingSettings, counter: TokenCounter):
        self.settings = settings
        self.counter = counter

    def chunk(self, document: Document) -> list[Chunk]:
        text = document.text
        chunks: list[Chunk] = []
        stack: list[tuple[int, str]] = []
        section: list[tuple[Block, int]] = []
        section_key: tuple[tuple[str, ...], int | None] | None = None
        position = 0

        def flush() -> None:
            if section and section_key is not None:
                self._pack(text, section, section_key, chunks)
            section.clear()

        for block in document.blocks:
            start = position
            position += len(block.text) + len(BLOCK_SEPARATOR)
            if block.kind == "heading":
                flush()
                level = max(block.level, 1)
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, block.text))
                section_key = None
                continue
            headings = tuple(h for _, h in stack)
            if block.kind == "record":
                flush()
                section_key = ((*headings, block.label or "record"), block.page)
                section.append((block, start))
                flush()
                section_key = None
                continue
            key = (headings, block.page)
            if key != section_key:
                flush()
                section_key = key
            section.append((block, start))
        flush()
        return chunks

    def _pack(
        self,
        text: str,
        blocks: list[tuple[Block, int]],
        key: tuple[tuple[str, ...], int | None],
        out: list[Chunk],
    ) -> None:
        limit = self.settings.max_tokens
        smallest = max(1, limit // 16)
        current: list[_Piece] = []
        first = len(out)  # this section's chunks are out[first:]
        held: list[int | None] = [None]  # start of a tiny leading fragment, not yet emitted

        def emit(pieces: list[_Piece], force: bool = False) -> None:
            if not pieces:
                return
            start, end = pieces[0].start, pieces[-1].end
            if not _WORDLIKE.search(text[start:end]):
                return  # a lone "." or code fence says nothing on its own
            if held[0] is not None:
                start, held[0] = held[0], None
            tokens = self.counter.count(text[start:end])
            if tokens < smallest and not force:
                # A fragment joins the chunk before it in the section, or the next one.
                if len(out) > first:
                    start = out.pop().start
                    tokens = self.counter.count(text[start:end])
                else:
                    held[0] = start
                    return
            headings, page = key
            out.append(
                Chunk(
                    ordinal=len(out),
                    text=text[start:end],
                    start=start,
                    end=end,
                    tokens=tokens,
                    page=page,
                    headings=headings,
                )
            )

        for block, start in blocks:
            tokens = self.counter.count(block.text)
            piece = _Piece(start, start + len(block.text), tokens)
            if tokens > limit:
                emit(current)
                current = []
                for window in self._windows(text, block, start):
                    emit(window)
                continue
            if current and sum(p.tokens for p in current) + tokens > limit:
                emit(current)
                current = []
            current.append(piece)
        emit(current)
        if held[0] is not None:  # the whole section is one small fragment: keep it
            emit([_Piece(held[0], blocks[-1][1] + len(blocks[-1][0].text), 0)], force=True)

    def _windows(self, text: str, block: Block, base: int) -> list[list[_Piece]]:
        """Overlapping windows over the units of one oversized block."""
        limit, overlap = self.settings.max_tokens, self.settings.overlap_tokens
        units: list[_Piece] = []
        for start, end in _units(block.text, base, block):
            tokens = self.counter.count(text[start:end])
            if tokens <= limit:
                units.append(_Piece(start, end, tokens))
                continue
            units.extend(self._split_words(text, start, end))
        windows: list[list[_Piece]] = []
        index = 0
        while index < len(units):
            window: list[_Piece] = []
            total = 0
            cursor = index
            while cursor < len(units) and (not window or total + units[cursor].tokens <= limit):
                window.append(units[cursor])
                total += units[cursor].tokens
                cursor += 1
            windows.append(window)
            if cursor >= len(units):
                break
            # Step back over trailing units worth about `overlap` tokens.
            back, carried = cursor, 0
            while back - 1 > index and carried + units[back - 1].tokens <= overlap:
                back -= 1
                carried += units[back].tokens
            index = back
        return windows

    def _split_words(self, text: str, start: int, end: int) -> list[_Piece]:
        """Units of at most ~max_tokens/4 tokens, cut at whitespace; a single "word"
        longer than that (a hash, base64) is cut every few characters."""
        target = max(4, self.settings.max_tokens // 4)
        pieces: list[_Piece] = []
        piece_start, piece_end, tokens = start, start, 0
        for match in _WORD.finditer(text, start, end):
            word_start, word_end = match.start(), match.end()
            count = self.counter.count(match.group())
            if count > target:
                if tokens:
                    pieces.append(_Piece(piece_start, piece_end, tokens))
                for cut in range(word_start, word_end, target):
                    stop = min(cut + target, word_end)
                    pieces.append(_Piece(cut, stop, self.counter.count(text[cut:stop])))
                piece_start, piece_end, tokens = word_end, word_end, 0
                continue
            if tokens and tokens + count > target:
                pieces.append(_Piece(piece_start, piece_end, tokens))
                piece_start, tokens = word_start, 0
            if not tokens:
                piece_start = word_start
            tokens += count
            piece_end = word_end
        if tokens:
            pieces.append(_Piece(piece_start, piece_end, tokens))
        return pieces


def embedding_text(title: str, headings: tuple[str, ...], text: str) -> str:
    """What gets embedded: the chunk with its title and heading path, so a passage under
    "Installation › Windows" is found by a question about installing on Windows."""
    path = [h for h in headings if h != title]
    context = " › ".join([title, *path]) if title else " › ".join(path)
    return f"{context}\n{text}" if context else text
