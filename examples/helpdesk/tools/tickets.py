"""Helpdesk tickets in a small SQLite database: create one, look one up, list yours.

The database is `helpdesk-tickets.db` in the Pilothouse data directory
(`$PILOTHOUSE_HOME`, or the per-user default), created on first use. Ticket ids run
HD-1001, HD-1002, ... The requester is the person running the copilot:
`$HELPDESK_REQUESTER` when set, else the operating-system user name. (A server
deployment would bind the signed-in user instead.)

Wired into the copilot in `copilot.yaml`:

    tools:
      - python: tools/tickets.py
        functions: [create_ticket, ticket_status, list_my_tickets]

Try them without a model: `pilothouse tools call examples/helpdesk ticket_status
--args '{"ticket_id": "HD-1001"}'`.
"""

from __future__ import annotations

import getpass
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from pilothouse.config import default_home
from pilothouse.tools import tool
from pilothouse.tools.errors import ToolError

DB_FILE = "helpdesk-tickets.db"
FIRST_NUMBER = 1001
REQUESTER_ENV = "HELPDESK_REQUESTER"

Priority = Literal["critical", "high", "medium", "low"]

# From the handbook's "Service desk hours and SLAs" page.
_SLA: dict[str, tuple[str, str]] = {
    "critical": ("P1", "15 minutes"),
    "high": ("P2", "30 minutes"),
    "medium": ("P3", "4 business hours"),
    "low": ("P4", "1 business day"),
}
_TICKET_ID = re.compile(r"^\s*(?:HD)?[\s-]*(\d{1,9})\s*$", re.IGNORECASE)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tickets (
    number      INTEGER PRIMARY KEY AUTOINCREMENT,
    summary     TEXT NOT NULL,
    description TEXT NOT NULL,
    priority    TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'open',
    requester   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tickets_requester ON tickets (requester, number);
"""


def database_path() -> Path:
    """Where the tickets live: `$PILOTHOUSE_HOME/helpdesk-tickets.db` (or the per-user
    data folder)."""
    return default_home() / DB_FILE


def requester() -> str:
    """Who is asking: `$HELPDESK_REQUESTER`, else the operating-system user."""
    explicit = os.environ.get(REQUESTER_ENV, "").strip()
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment
        return "unknown"


@contextmanager
def _connect() -> Iterator[sqlite3.Connection]:
    path = database_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=10)
    except (OSError, sqlite3.Error) as exc:
        raise ToolError(
            f"the ticket database {path} cannot be opened ({exc}); check that the data "
            "directory is writable"
        ) from None
    try:
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(_SCHEMA)
        with connection:
            connection.execute(
                "INSERT INTO sqlite_sequence (name, seq) SELECT 'tickets', ? "
                "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'tickets')",
                (FIRST_NUMBER - 1,),
            )
        yield connection
    finally:
        connection.close()


def _ticket_id(number: int) -> str:
    return f"HD-{number}"


def _parse_ticket_id(ticket_id: str) -> int:
    match = _TICKET_ID.match(ticket_id)
    if match is None:
        raise ToolError(
            f"{ticket_id!r} is not a ticket id; ticket ids look like HD-1001 (ask the user "
            "for the number, or call list_my_tickets)"
        )
    return int(match.group(1))


def _describe(row: sqlite3.Row) -> dict[str, Any]:
    level, response = _SLA[row["priority"]]
    return {
        "ticket_id": _ticket_id(row["number"]),
        "summary": row["summary"],
        "status": row["status"],
        "priority": f"{level} ({row['priority']})",
        "response_target": response,
        "created": row["created_at"],
    }


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@tool(requires_approval=True)
def create_ticket(
    summary: Annotated[str, Field(min_length=5, max_length=120)],
    description: Annotated[str, Field(min_length=1, max_length=4000)],
    priority: Priority = "medium",
) -> dict[str, Any]:
    """Open a new helpdesk ticket. Only when the user asks you to open or raise a ticket.

    Args:
        summary: A short title you write from the user's words.
        description: The problem in the user's own words, with any details they gave.
        priority: critical (site down or security), high (a team blocked), medium or low.
    """
    created = _now()
    with _connect() as db, db:
        cursor = db.execute(
            "INSERT INTO tickets (summary, description, priority, requester, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (summary.strip(), description.strip(), priority, requester(), created, created),
        )
        row = db.execute("SELECT * FROM tickets WHERE number = ?", (cursor.lastrowid,)).fetchone()
    return _describe(row)


@tool(read_only=True)
def ticket_status(ticket_id: str) -> dict[str, Any]:
    """Look up a ticket by its number. Only when the user gives a ticket number.

    Args:
        ticket_id: The ticket number exactly as the user wrote it.
    """
    number = _parse_ticket_id(ticket_id)
    with _connect() as db:
        row = db.execute("SELECT * FROM tickets WHERE number = ?", (number,)).fetchone()
    if row is None:
        raise ToolError(f"there is no ticket {_ticket_id(number)}")
    result = _describe(row)
    result["description"] = row["description"]
    result["requester"] = row["requester"]
    result["updated"] = row["updated_at"]
    return result


@tool(read_only=True)
def list_my_tickets() -> dict[str, Any]:
    """List the user's own tickets. Only when the user asks about their tickets."""
    me = requester()
    with _connect() as db:
        rows = db.execute(
            "SELECT * FROM tickets WHERE requester = ? ORDER BY number DESC LIMIT 20", (me,)
        ).fetchall()
        total = db.execute("SELECT COUNT(*) FROM tickets WHERE requester = ?", (me,)).fetchone()[0]
    return {"requester": me, "total": total, "tickets": [_describe(row) for row in rows]}
