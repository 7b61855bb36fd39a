"""What a search asks for, as SQL: document filters and FTS5 match expressions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_WORD = re.compile(r"\w+", re.UNICODE)
# Words that match nearly every chunk: dropped from keyword queries (BM25 would give
# them almost no weight anyway, but matching them costs time on large indexes).
_STOPWORD_TEXT = (
    "a an and are as at be by can do does for from how i if in into is it its me my "
    "of on or so than that the their then there these this to was what when where "
    "which who why will with you your"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True, slots=True)
class Filters:
    """Restrict a search or a listing. `sources` are glob patterns over the source
    (path or URL); `kinds` document kinds (pdf, html, ...); `tags` any of these tags."""

    sources: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.sources or self.kinds or self.tags)

    def sql(self, alias: str = "d") -> tuple[str, list[Any]]:
        """A WHERE fragment over `documents AS alias` (always valid, '1' when empty)."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.sources:
            clauses.append("(" + " OR ".join(f"{alias}.source GLOB ?" for _ in self.sources) + ")")
            params.extend(self.sources)
        if self.kinds:
            clauses.append(f"{alias}.kind IN ({','.join('?' * len(self.kinds))})")
            params.extend(self.kinds)
        if self.tags:
            marks = ",".join("?" * len(self.tags))
            clauses.append(
                f"EXISTS (SELECT 1 FROM json_each({alias}.tags) WHERE value IN ({marks}))"
            )
            params.extend(self.tags)
        return (" AND ".join(clauses) or "1"), params


def query_words(text: str) -> list[str]:
    """The distinct searchable words of `text`, in order: stopwords dropped unless
    nothing else is left; at most 32."""
    words = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]
    if not words:
        words = _WORD.findall(text.lower())
    return list(dict.fromkeys(words))[:32]


def match_expression(words: list[str]) -> str | None:
    """An FTS5 MATCH expression: each word quoted (no operator injection), OR-ed."""
    return " OR ".join(f'"{w}"' for w in words) if words else None


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression for every searchable word of `text`; None when
    nothing searchable is left."""
    return match_expression(query_words(text))
