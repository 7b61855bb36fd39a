"""A conversation's records (its row, its messages with their place) and their stored
form: the columns every conversation store reads (SQLite, copilot/conversations.py;
PostgreSQL, copilot/conversations_postgres.py), the rows read back (a damaged one as
`CorruptConversationError`), messages and metadata as stored JSON, and titles.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pilothouse.copilot.asked_slots import AskedFor, load_asked
from pilothouse.errors import PilothouseError
from pilothouse.types import Message, message_from_dict, message_to_dict

TITLE_LIMIT = 80
_SPACE = re.compile(r"\s+")


class ConversationError(PilothouseError):
    """A conversation operation was given something it cannot store."""


class CorruptConversationError(ConversationError):
    """A stored row cannot be read back (damaged file, or written by something else)."""


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation's row, without its messages."""

    id: str
    copilot: str
    title: str
    created: datetime
    updated: datetime
    summary: str
    """Rolling summary of messages `[0, summary_upto)`; empty when none."""
    summary_upto: int
    message_count: int
    metadata: dict[str, Any] = field(default_factory=dict)
    key_id: str | None = None
    """The server API key (its id) that started it; None without a key (CLI, Python)."""
    asked: tuple[AskedFor, ...] = ()
    """What the last answer asked the user for (a request waiting for its id)."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message with its place in the conversation."""

    index: int
    message: Message
    created: datetime
    run_id: str | None
    sent: tuple[Message, ...] | None = None
    """What this message stands for in a model's prompt, when not itself."""

    @property
    def prompt(self) -> tuple[Message, ...]:
        """The messages to send for it: its sent form, else the message itself."""
        return (self.message,) if self.sent is None else self.sent


def new_conversation_id() -> str:
    """A random url-safe id (16 characters, 96 bits)."""
    return secrets.token_urlsafe(12)


def make_title(text: str, limit: int = TITLE_LIMIT) -> str:
    """The first question as a title: whitespace collapsed, cut at a word to `limit`."""
    flat = _SPACE.sub(" ", text).strip()
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + "…"


def record_time() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


CONVERSATION_COLUMNS = (
    "id, copilot, title, created, updated, summary, summary_upto, message_count, metadata, "
    "key_id, asked"
)
MESSAGE_COLUMNS = "idx, message, created, run_id, sent"


def dump_message(message: Message) -> str:
    return json.dumps(message_to_dict(message), ensure_ascii=False)


def dump_messages(messages: Sequence[Message]) -> str:
    return json.dumps([message_to_dict(m) for m in messages], ensure_ascii=False)


def load_message(data: object) -> Message:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return message_from_dict(data)


def dump_metadata(metadata: dict[str, Any] | None) -> str:
    if metadata is None:
        return "{}"
    if not isinstance(metadata, dict):
        raise ConversationError(f"conversation metadata must be a dict, not {type(metadata)}")
    try:
        return json.dumps(metadata, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConversationError(
            f"conversation metadata must be plain JSON data (str, number, bool, None, list, "
            f"dict): {exc}"
        ) from None


def conversation_from_row(where: object, row: tuple[Any, ...]) -> Conversation:
    """A conversation row (`CONVERSATION_COLUMNS`) read back; `where`: the store, named
    in the error when it cannot be."""
    cid, copilot, title, created, updated, summary, upto, count, metadata, key_id, asked = row
    try:
        meta = json.loads(metadata)
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        return Conversation(
            id=cid,
            copilot=copilot,
            title=title,
            created=datetime.fromisoformat(created),
            updated=datetime.fromisoformat(updated),
            summary=summary,
            summary_upto=int(upto),
            message_count=int(count),
            metadata=meta,
            key_id=key_id,
            asked=load_asked(asked),
        )
    except (ValueError, TypeError) as exc:
        raise CorruptConversationError(
            f"{where}: conversation {cid!r}: its stored row cannot be read ({exc}); "
            "the database was changed by something other than Pilothouse or is damaged; "
            "delete the conversation or restore the file from a backup"
        ) from None


def message_from_row(
    where: object,
    conversation_id: str,
    index: int,
    body: str,
    created: str,
    run_id: str | None,
    sent: str | None,
) -> StoredMessage:
    """A message row (`MESSAGE_COLUMNS`) read back; `where` as above."""
    try:
        message = load_message(json.loads(body))
        forms = None if sent is None else json.loads(sent)
        if forms is not None and not isinstance(forms, list):
            raise ValueError("its sent form is not a JSON list")
        prompt = None if forms is None else tuple(load_message(form) for form in forms)
        when = datetime.fromisoformat(created)
    except (ValueError, TypeError, AttributeError) as exc:
        raise CorruptConversationError(
            f"{where}: conversation {conversation_id!r}, message {index}: the stored "
            f"message cannot be read ({type(exc).__name__}: {exc}); the database was "
            "changed by something other than Pilothouse or is damaged; delete the "
            "conversation or restore the file from a backup"
        ) from None
    return StoredMessage(int(index), message, when, run_id, prompt)
