"""Text tidied after characters were taken out of it."""

from __future__ import annotations

import re

_RUN = re.compile(r"[ \t]{2,}")
_BEFORE_CLOSING = re.compile(r"\s+([,.;:!?)])")


def tidied(text: str) -> str:
    """`text` with the spacing a removal leaves behind closed up: runs of spaces or tabs
    as one space, no space before a closing punctuation mark or bracket, none at
    either end ("affects 我." without the 我 is "affects.", "(Dell P2725H)" without the
    model "(Dell)")."""
    return _BEFORE_CLOSING.sub(r"\1", _RUN.sub(" ", text)).strip()
