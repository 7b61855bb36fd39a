"""Counting tokens the way the embedding model will, so chunks fit its window."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

from tokenizers import Tokenizer

_PIECES = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class TokenCounter(Protocol):
    """Counts tokens of a text. `name` is recorded with the index settings."""

    @property
    def name(self) -> str: ...

    def count(self, text: str) -> int: ...


class ApproximateCounter:
    """Words and punctuation marks, plus a third for sub-word splits. Good enough for
    cloud embedding models whose tokenizer is not available offline."""

    name = "approx-words"

    def count(self, text: str) -> int:
        pieces = _PIECES.findall(text)
        long_words = sum(1 for p in pieces if len(p) > 8)
        return len(pieces) + long_words // 2


class WordPieceCounter:
    """Exact counts from a Hugging Face `tokenizer.json` (no special tokens)."""

    def __init__(self, tokenizer_file: Path, name: str):
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)
