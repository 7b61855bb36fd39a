"""Search filters (`Filters`) as a PostgreSQL WHERE clause: what `Filters.sql` is for
SQLite, with SQLite's GLOB rewritten as anchored regular expressions."""

from __future__ import annotations

import re
from typing import Any

from pilothouse.knowledge.query import Filters


def filter_sql(filters: Filters, alias: str) -> tuple[str, list[Any]]:
    """`Filters.sql` for PostgreSQL: source globs as anchored regular expressions, kinds,
    and any of the tags (a JSON array of text)."""
    clauses: list[str] = []
    params: list[Any] = []
    if filters.sources:
        clauses.append("(" + " OR ".join(f"{alias}.source ~ %s" for _ in filters.sources) + ")")
        params.extend(glob_regex(s) for s in filters.sources)
    if filters.kinds:
        clauses.append(f"{alias}.kind = ANY(%s)")
        params.append(list(filters.kinds))
    if filters.tags:
        clauses.append(
            f"EXISTS (SELECT 1 FROM json_array_elements_text({alias}.tags::json) t(v) "
            "WHERE t.v = ANY(%s))"
        )
        params.append(list(filters.tags))
    return (" AND ".join(clauses) or "TRUE"), params


_GLOB_PART = re.compile(r"\*|\?|\[!?\]?[^\]]*\]|[^*?\[]+|\[")


def glob_regex(pattern: str) -> str:
    """SQLite's GLOB (`*`, `?`, `[...]`, `[^...]`, case-sensitive) as an anchored POSIX
    regular expression."""
    out = []
    for part in _GLOB_PART.findall(pattern):
        if part == "*":
            out.append(".*")
        elif part == "?":
            out.append(".")
        elif part.startswith("[") and len(part) > 1 and part.endswith("]"):
            body = part[1:-1]
            if body.startswith(("^", "!")):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
        else:
            out.append(re.sub(r"([.^$|()\[\]{}+*?\\])", r"\\\1", part))
    return "^" + "".join(out) + "$"
