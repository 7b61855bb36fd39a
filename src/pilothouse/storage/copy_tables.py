"""What `pilothouse storage copy` copies (copy.py): each kind of state's tables in the
data directory's `pilothouse.db` with their PostgreSQL twins, and a knowledge base's
tables. A kind's PostgreSQL store makes its tables (its migrations) before the copy."""

from __future__ import annotations

from dataclasses import dataclass

from pilothouse.storage.promotions import COLUMNS as PROMOTION_COLUMNS
from pilothouse.storage.traces import _RUN_COLUMNS, _SPAN_COLUMNS

EVAL_CASE_COLUMNS = (
    "run_id",
    "arm",
    "suite",
    "case_id",
    "rep",
    "status",
    "question",
    "answer",
    "model",
    "trace_id",
    "error",
    "details",
    "finished",
)
RESPONSE_COLUMNS = (
    "response_id",
    "created",
    "model",
    "key_id",
    "previous_id",
    "conversation_id",
    "run_id",
    "messages",
    "response",
)
"""The stored responses' columns: what server/openai/responses_store.py writes and
the copy reads (one list, so a column added to one is not lost by the other)."""
EVAL_SCORE_COLUMNS = (
    "run_id",
    "arm",
    "suite",
    "case_id",
    "rep",
    "metric",
    "judge",
    "value",
    "detail",
)


@dataclass(frozen=True)
class Table:
    """One SQLite table and its PostgreSQL twin."""

    source: str
    target: str
    columns: tuple[str, ...]
    order: str
    """The primary key (rows are read and checksummed in this order)."""
    vector: str | None = None
    """The column holding a float32 vector (a BLOB in SQLite, a pgvector in PostgreSQL)."""
    identity: str | None = None
    """A column numbered by the database (SQLite's AUTOINCREMENT): copied as it is, and
    PostgreSQL's sequence moved past the largest copied number."""


MAIN: tuple[tuple[str, tuple[Table, ...]], ...] = (
    (
        "conversations",
        (
            Table(
                "conversations",
                "conversations",
                (
                    "id",
                    "copilot",
                    "title",
                    "created",
                    "updated",
                    "summary",
                    "summary_upto",
                    "message_count",
                    "metadata",
                    "key_id",
                    "asked",
                ),
                "id",
            ),
            Table(
                "conversation_messages",
                "conversation_messages",
                ("conversation_id", "idx", "role", "message", "created", "run_id", "sent"),
                "conversation_id, idx",
            ),
        ),
    ),
    (
        "paused_runs",
        (
            Table(
                "paused_runs",
                "paused_runs",
                ("run_id", "conversation_id", "copilot", "created", "state", "key_id"),
                "run_id",
            ),
        ),
    ),
    (
        "traces",
        (
            Table("runs", "runs", _RUN_COLUMNS, "run_id"),
            Table("spans", "spans", _SPAN_COLUMNS, "trace_id, span_id"),
        ),
    ),
    (
        "keys",
        (
            Table(
                "api_keys",
                "api_keys",
                ("id", "name", "key_hash", "scopes", "rate_per_min", "created_at", "revoked_at"),
                "id",
            ),
        ),
    ),
    (
        "evals",
        (
            Table(
                "eval_runs",
                "eval_runs",
                ("run_id", "copilot", "folder", "created", "finished", "status", "total", "plan"),
                "run_id",
            ),
            Table(
                "eval_arms",
                "eval_arms",
                ("run_id", "arm", "label", "model", "variants", "prompt"),
                "run_id, arm",
            ),
            Table(
                "eval_cases", "eval_cases", EVAL_CASE_COLUMNS, "run_id, arm, suite, case_id, rep"
            ),
            Table(
                "eval_scores",
                "eval_scores",
                EVAL_SCORE_COLUMNS,
                "run_id, arm, metric, judge, suite, case_id, rep",
            ),
        ),
    ),
    (
        "promotions",
        (
            Table("promotions", "promotions", PROMOTION_COLUMNS, "promotion_id"),
            Table(
                "promotion_events",
                "promotion_events",
                ("promotion_id", "seq", "at", "stage", "step", "kind", "message", "data"),
                "seq",
                identity="seq",
            ),
            Table(
                "promotion_samples",
                "promotion_samples",
                (
                    "promotion_id",
                    "seq",
                    "at",
                    "stage",
                    "step",
                    "arm",
                    "run_id",
                    "pair",
                    "conversation_id",
                    "error",
                    "vals",
                ),
                "seq",
                identity="seq",
            ),
            Table(
                "promotion_assignments",
                "promotion_assignments",
                ("promotion_id", "key", "arm", "at"),
                "promotion_id, key",
            ),
        ),
    ),
    (
        "responses",
        (Table("responses", "responses", RESPONSE_COLUMNS, "response_id"),),
    ),
)

_CHUNK_COLUMNS = (
    "id",
    "document_id",
    "ordinal",
    "text",
    "context",
    "headings",
    "page",
    "start_char",
    "end_char",
    "tokens",
    "text_hash",
    "embedding",
)
_DOC_COLUMNS = (
    "id",
    "source",
    "title",
    "kind",
    "mtime",
    "size",
    "content_hash",
    "tags",
    "chunk_count",
    "ingested_at",
)


def knowledge_tables(prefix: str) -> tuple[Table, ...]:
    return (
        Table("kb_meta", f"{prefix}_meta", ("key", "value"), "key"),
        Table("documents", f"{prefix}_documents", _DOC_COLUMNS, "id"),
        Table("chunks", f"{prefix}_chunks", _CHUNK_COLUMNS, "id", vector="embedding"),
    )


CACHE = Table(
    "embedding_cache",
    "knowledge_embedding_cache",
    ("model", "text_hash", "vector"),
    "model, text_hash",
)
