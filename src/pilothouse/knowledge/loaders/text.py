"""Plain text: the encoding is detected; binary content is refused."""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

from pilothouse.knowledge.documents import Block

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n+")


class NotTextError(ValueError):
    """The bytes are not text in any encoding we can recognise."""


def decode(data: bytes) -> str:
    """Decode bytes of unknown encoding; raise `NotTextError` for binary content.

    A byte-order mark wins; otherwise UTF-8 is tried first (most files today), then
    charset-normalizer's best guess. Text with more than 1% control characters (or any
    NUL) is taken for binary whatever the guess.
    """
    text: str | None = None
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = data.decode(encoding, errors="replace")
            break
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            best = from_bytes(data).best()
            if best is None:
                raise NotTextError("binary content, not text in any known encoding") from None
            text = str(best)
    text = text.lstrip("\ufeff")
    controls = len(_CONTROL.findall(text[:200_000]))
    if "\x00" in text or controls > max(1, len(text[:200_000]) // 100):
        raise NotTextError("binary content, not text (control bytes found)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def paragraphs(text: str, *, page: int | None = None) -> list[Block]:
    """Blocks for text split at blank lines; whitespace-only pieces are dropped."""
    blocks = []
    for piece in _PARAGRAPH_BREAK.split(text):
        piece = piece.strip()
        if piece:
            blocks.append(Block("paragraph", piece, page=page))
    return blocks


def parse_text(data: bytes) -> tuple[str | None, list[Block]]:
    return None, paragraphs(decode(data))
