"""ConversationStore: SQLite-backed conversations, resumable by id, with atomic appends."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot.asked_slots import AskedFor
from pilothouse.copilot.conversation_records import (
    ConversationError,
    CorruptConversationError,
    make_title,
)
from pilothouse.copilot.conversations import ConversationStore
from pilothouse.errors import NotFoundError
from pilothouse.types import ImagePart, Message, ToolCallPart, ToolResultPart, message_to_dict


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "pilothouse.db"


@pytest.fixture
def store(db: Path) -> Iterator[ConversationStore]:
    s = ConversationStore(db)
    yield s
    s.close()


EVERY_PART = [
    Message.system("You are the helpdesk copilot. ☕"),
    Message.user("My VPN drops — what now?", ImagePart(url="https://example.org/shot.png")),
    Message("user", (ImagePart(data="aGVsbG8=", media_type="image/jpeg"),)),
    Message.assistant(
        "Let me check.",
        (
            ToolCallPart("call_1", "lookup_ticket", {"id": 42, "tags": ["vpn", "ü"]}),
            ToolCallPart("call_2", "broken", {}, raw_arguments='{"id": 4'),
        ),
    ),
    Message.tool(
        ToolResultPart("call_1", "lookup_ticket", '{"status": "open"}'),
        ToolResultPart("call_2", "broken", "arguments are not JSON", is_error=True),
    ),
    Message.assistant("Ticket 42 is open.\n\nSources: [1]"),
    Message("assistant", ()),
]


async def test_every_part_kind_round_trips_across_store_instances(db: Path) -> None:
    first = ConversationStore(db)
    conv = await first.create("helpdesk", {"user": "ana", "n": 1.5, "tags": ["a"]})
    stored = await first.append(conv.id, EVERY_PART, run_id="run-1")
    assert [s.index for s in stored] == list(range(len(EVERY_PART)))
    first.close()

    # A new store on the same file is what a new process sees: resumable by id.
    second = ConversationStore(db)
    again = await second.get(conv.id)
    assert again.copilot == "helpdesk"
    assert again.metadata == {"user": "ana", "n": 1.5, "tags": ["a"]}
    assert again.message_count == len(EVERY_PART)
    assert await second.messages(conv.id) == EVERY_PART
    records = await second.records(conv.id)
    assert [r.run_id for r in records] == ["run-1"] * len(EVERY_PART)
    assert [r.index for r in records] == list(range(len(EVERY_PART)))

    # Appending continues the numbering where the other instance left off.
    more = await second.append(conv.id, [Message.user("thanks")], run_id=None)
    assert more[0].index == len(EVERY_PART)
    assert more[0].run_id is None
    assert (await second.messages(conv.id, start=len(EVERY_PART))) == [Message.user("thanks")]
    assert (await second.messages(conv.id, 3, 5)) == EVERY_PART[3:5]
    second.close()


async def test_ids_are_random_and_url_safe(store: ConversationStore) -> None:
    ids = {(await store.create("c")).id for _ in range(20)}
    assert len(ids) == 20
    for cid in ids:
        assert len(cid) >= 16
        assert all(ch.isalnum() or ch in "-_" for ch in cid)


async def test_title_is_the_first_question_trimmed(store: ConversationStore) -> None:
    conv = await store.create("helpdesk")
    assert conv.title == ""
    await store.append(conv.id, [Message.system("sys"), Message.assistant("Hello!")])
    assert (await store.get(conv.id)).title == ""
    long_question = "  How   do I\nreset my password " + "on the intranet portal " * 10
    await store.append(conv.id, [Message.user(long_question)])
    title = (await store.get(conv.id)).title
    assert title.startswith("How do I reset my password on the intranet")
    assert len(title) <= 80
    assert title.endswith("…")
    # Later questions do not change it.
    await store.append(conv.id, [Message.user("another question")])
    assert (await store.get(conv.id)).title == title
    # An explicit title wins.
    named = await store.create("helpdesk", title="Printer trouble")
    await store.append(named.id, [Message.user("The printer jams")])
    assert (await store.get(named.id)).title == "Printer trouble"


def test_make_title() -> None:
    assert make_title("  short\tone  ") == "short one"
    assert make_title("x" * 200) == "x" * 79 + "…"
    assert make_title("") == ""


async def test_list_newest_first_filtered_and_limited(store: ConversationStore) -> None:
    a = await store.create("helpdesk")
    b = await store.create("hr")
    c = await store.create("helpdesk")
    await store.append(a.id, [Message.user("most recent")])
    listed = await store.list()
    assert [x.id for x in listed] == [a.id, c.id, b.id]
    assert [x.id for x in await store.list("helpdesk")] == [a.id, c.id]
    assert [x.id for x in await store.list(limit=1)] == [a.id]
    assert await store.list("nobody") == []
    assert listed[0].message_count == 1
    assert listed[0].updated > listed[0].created


async def test_listing_never_reads_messages(store: ConversationStore) -> None:
    conv = await store.create("helpdesk")
    await store.append(conv.id, [Message.user("q"), Message.assistant("x" * 100_000)])
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    listed = await store.list()
    got = await store.get(conv.id)
    store._conn.set_trace_callback(None)
    assert listed[0].message_count == 2 and got.message_count == 2
    assert statements, "the trace callback saw no SQL"
    assert not [s for s in statements if "conversation_messages" in s]
    # Even with every message row unreadable, listing works.
    store._conn.execute("UPDATE conversation_messages SET message = 'garbage'")
    assert [x.id for x in await store.list()] == [conv.id]


async def test_missing_conversation_is_a_clear_not_found(store: ConversationStore) -> None:
    for call in (
        store.get("nope"),
        store.messages("nope"),
        store.append("nope", [Message.user("hi")]),
        store.append("nope", []),
        store.delete("nope"),
    ):
        with pytest.raises(NotFoundError, match=r"no conversation 'nope' in .*pilothouse\.db"):
            await call


async def test_delete_removes_the_conversation_and_its_messages(store: ConversationStore) -> None:
    keep = await store.create("helpdesk")
    gone = await store.create("helpdesk")
    await store.append(keep.id, [Message.user("keep me")])
    await store.append(gone.id, [Message.user("q"), Message.assistant("a")])
    await store.delete(gone.id)
    with pytest.raises(NotFoundError, match=gone.id):
        await store.get(gone.id)
    with pytest.raises(NotFoundError):
        await store.append(gone.id, [Message.user("again")])
    with pytest.raises(NotFoundError):
        await store.delete(gone.id)
    left = store._conn.execute(
        "SELECT COUNT(*) FROM conversation_messages WHERE conversation_id = ?", (gone.id,)
    ).fetchone()[0]
    assert left == 0
    assert [c.id for c in await store.list()] == [keep.id]
    assert await store.messages(keep.id) == [Message.user("keep me")]


async def test_empty_append_changes_nothing(store: ConversationStore) -> None:
    conv = await store.create("c")
    assert await store.append(conv.id, []) == []
    after = await store.get(conv.id)
    assert after.message_count == 0 and after.updated == conv.updated


async def test_metadata_must_be_json(store: ConversationStore) -> None:
    with pytest.raises(ConversationError, match="plain JSON"):
        await store.create("c", {"when": object()})
    with pytest.raises(ConversationError, match="plain JSON"):
        await store.create("c", {"x": float("nan")})
    assert await store.list() == []


async def test_corrupt_message_row_names_conversation_and_index(store: ConversationStore) -> None:
    conv = await store.create("helpdesk")
    await store.append(conv.id, [Message.user("a"), Message.assistant("b"), Message.user("c")])
    store._conn.execute(
        "UPDATE conversation_messages SET message = '{not json' WHERE conversation_id = ? "
        "AND idx = 1",
        (conv.id,),
    )
    with pytest.raises(CorruptConversationError) as info:
        await store.messages(conv.id)
    text = str(info.value)
    assert f"conversation {conv.id!r}, message 1" in text
    assert "JSONDecodeError" in text and "backup" in text
    # Rows around it are still readable on their own.
    assert await store.messages(conv.id, 2) == [Message.user("c")]

    for bad in (
        '{"role": "wizard", "parts": []}',
        '{"role": "user", "parts": [{"kind": "hologram"}]}',
        '{"role": "user", "parts": [{"kind": "text", "txt": "x"}]}',
        '{"role": "user", "parts": ["just a string"]}',
        '{"role": "user", "parts": [{"kind": "image"}]}',
        "[1, 2]",
    ):
        store._conn.execute(
            "UPDATE conversation_messages SET message = ? WHERE conversation_id = ? AND idx = 2",
            (bad, conv.id),
        )
        with pytest.raises(CorruptConversationError, match="message 2"):
            await store.messages(conv.id, 2)


async def test_corrupt_metadata_is_a_clear_error(store: ConversationStore) -> None:
    conv = await store.create("helpdesk")
    store._conn.execute("UPDATE conversations SET metadata = 'oops' WHERE id = ?", (conv.id,))
    with pytest.raises(CorruptConversationError, match=conv.id):
        await store.get(conv.id)


async def test_set_summary_only_advances_from_the_expected_state(store: ConversationStore) -> None:
    conv = await store.create("c")
    assert await store.set_summary(conv.id, "first", 4, expected_upto=0)
    # A second summariser that started from the old state loses, and changes nothing.
    assert not await store.set_summary(conv.id, "stale", 3, expected_upto=0)
    got = await store.get(conv.id)
    assert (got.summary, got.summary_upto) == ("first", 4)
    with pytest.raises(NotFoundError):
        await store.set_summary("nope", "x", 1, expected_upto=0)


async def test_migration_is_registered_and_reopening_is_idempotent(db: Path) -> None:
    ConversationStore(db).close()
    ConversationStore(db).close()
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT version FROM schema_migrations WHERE component = 'conversations'"
    ).fetchall()
    assert rows == [(1,), (2,), (3,), (4,)]


def old_database(db: Path, version: int, *messages: Message) -> None:
    """The database as a release at schema `version` left it: conversation 'old1'."""
    from pilothouse.copilot.conversations import MIGRATIONS
    from pilothouse.storage.sqlite import connect, migrate

    when = "2026-01-01T00:00:00+00:00"
    conn = connect(db)
    migrate(conn, "conversations", MIGRATIONS[:version])
    conn.execute(
        "INSERT INTO conversations (id, copilot, created, updated, message_count) VALUES "
        "('old1', 'helpdesk', ?, ?, ?)",
        (when, when, len(messages)),
    )
    for index, message in enumerate(messages):
        conn.execute(
            "INSERT INTO conversation_messages (conversation_id, idx, role, message, created) "
            "VALUES ('old1', ?, ?, ?, ?)",
            (index, message.role, json.dumps(message_to_dict(message)), when),
        )
    conn.close()


async def test_a_version_1_database_gains_owners_and_keeps_its_conversations(db: Path) -> None:
    old_database(db, 1)
    with ConversationStore(db) as store:
        old = await store.get("old1")
        assert old.copilot == "helpdesk" and old.key_id is None
        mine = await store.create("helpdesk", key_id="key_a")
        await store.create("helpdesk", key_id="key_b")
        assert (await store.get(mine.id)).key_id == "key_a"
        assert [c.id for c in await store.list(key_id="key_a")] == [mine.id]
        assert len(await store.list()) == 3


async def test_a_version_2_database_keeps_its_messages_and_gains_sent_forms(db: Path) -> None:
    old_database(db, 2, Message.user("Old question"))
    with ConversationStore(db) as store:
        [old] = await store.records("old1")
        assert old.message == Message.user("Old question") and old.sent is None
        assert old.prompt == (old.message,)
        sent = (Message.user("Passages: ...\n\nQuestion: New question"),)
        await store.append("old1", [Message.user("New question")], sent=[sent])
        assert [r.sent for r in await store.records("old1")] == [None, sent]


async def test_a_version_3_database_keeps_its_conversations_and_gains_asked_slots(
    db: Path,
) -> None:
    old_database(db, 3, Message.user("Can you check my ticket?"))
    with ConversationStore(db) as store:
        old = await store.get("old1")
        assert old.asked == () and old.message_count == 1
        await store.set_asked("old1", [AskedFor("ticket_status", "ticket_id")])
        assert (await store.get("old1")).asked == (AskedFor("ticket_status", "ticket_id"),)


async def test_an_asked_slot_that_cannot_be_read_is_a_corrupt_row(db: Path) -> None:
    old_database(db, 4)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE conversations SET asked = '{\"tool\": 1}' WHERE id = 'old1'")
    conn.commit()
    conn.close()
    with ConversationStore(db) as store, pytest.raises(CorruptConversationError, match="old1"):
        await store.get("old1")


def test_for_settings_uses_the_data_directory_database(tmp_path: Path) -> None:
    settings = Settings.from_sources(home=tmp_path, environ={})
    with ConversationStore.for_settings(settings) as s:
        assert s.path == settings.database_path
    assert settings.database_path.exists()


# --- concurrency --------------------------------------------------------------------


def _assert_batches_contiguous(messages: list[Message], batches: int, size: int) -> None:
    """Each message text is 'B/I' (batch, item): each batch must sit in one run, in order."""
    texts = [m.text for m in messages]
    assert len(texts) == batches * size
    assert len(set(texts)) == len(texts), "a message was stored twice"
    for position in range(0, len(texts), size):
        run = texts[position : position + size]
        batch = run[0].split("/")[0]
        assert run == [f"{batch}/{i}" for i in range(size)], f"interleaved at {position}: {run}"


def _batch(name: str, size: int) -> list[Message]:
    return [Message.user(f"{name}/{i}") for i in range(size)]


async def test_concurrent_appends_in_one_process_never_interleave(
    store: ConversationStore,
) -> None:
    conv = await store.create("c")
    results = await asyncio.gather(
        *(store.append(conv.id, _batch(f"t{n}", 5), run_id=f"r{n}") for n in range(30))
    )
    for stored in results:
        indexes = [s.index for s in stored]
        assert indexes == list(range(indexes[0], indexes[0] + 5))
    _assert_batches_contiguous(await store.messages(conv.id), 30, 5)
    assert (await store.get(conv.id)).message_count == 150


async def test_concurrent_appends_from_threads_with_their_own_stores(db: Path) -> None:
    with ConversationStore(db) as s:
        cid = (await s.create("c")).id

    errors: list[BaseException] = []

    def worker(name: str) -> None:
        async def go() -> None:
            with ConversationStore(db) as own:
                for n in range(20):
                    await own.append(cid, _batch(f"{name}{n}", 3))

        try:
            asyncio.run(go())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"th{k}-",)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with ConversationStore(db) as s:
        _assert_batches_contiguous(await s.messages(cid), 60, 3)


_PROCESS_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from pilothouse.copilot.conversations import ConversationStore
    from pilothouse.types import Message

    async def main(db, cid, name):
        with ConversationStore(db) as store:
            # Both processes start appending together (the test releases them at once).
            print("ready", flush=True)
            sys.stdin.readline()
            for n in range(25):
                await store.append(cid, [Message.user(f"{name}{n}/{i}") for i in range(4)])

    asyncio.run(main(*sys.argv[1:4]))
    """
)


async def test_concurrent_appends_from_two_processes(db: Path) -> None:
    with ConversationStore(db) as s:
        cid = (await s.create("c")).id
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _PROCESS_WORKER,
            str(db),
            cid,
            name,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in ("p1-", "p2-")
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert await proc.stdout.readline() == b"ready\n"
    outcomes = await asyncio.gather(*(proc.communicate(b"go\n") for proc in procs))
    for proc, (_, err) in zip(procs, outcomes, strict=True):
        assert proc.returncode == 0, err.decode()
    with ConversationStore(db) as s:
        messages = await s.messages(cid)
        _assert_batches_contiguous(messages, 50, 4)
        assert (await s.get(cid)).message_count == 200
    # Both processes' messages are all there.
    names = {m.text.split("/")[0] for m in messages}
    assert names == {f"p{p}-{n}" for p in (1, 2) for n in range(25)}


async def test_stored_json_is_the_plain_message_form(store: ConversationStore) -> None:
    conv = await store.create("c")
    call = ToolCallPart("c1", "search", {"q": "vpn"})
    await store.append(conv.id, [Message.assistant("", (call,))])
    raw = store._conn.execute(
        "SELECT role, message FROM conversation_messages WHERE conversation_id = ?", (conv.id,)
    ).fetchone()
    assert raw[0] == "assistant"
    assert json.loads(raw[1]) == {
        "role": "assistant",
        "parts": [{"kind": "tool_call", "id": "c1", "name": "search", "arguments": {"q": "vpn"}}],
    }
