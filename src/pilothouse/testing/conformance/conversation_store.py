"""The conversation-store suite: what every store of conversations does (today the
SQLite `ConversationStore`; other backends pass the same checks)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from pilothouse.copilot.asked_slots import AskedFor
from pilothouse.copilot.conversation_records import ConversationError
from pilothouse.copilot.conversations import ConversationStore
from pilothouse.errors import NotFoundError
from pilothouse.testing.conformance.stores import PERSISTENT, THREADS, StoreSubject
from pilothouse.testing.conformance.suite import Suite, expect
from pilothouse.types import ImagePart, Message, ToolCallPart, ToolResultPart

CONVERSATION_STORES: Suite[StoreSubject[Any]] = Suite(
    "conversation stores", "conversations, their messages in order, summaries, ownership"
)

Subject = StoreSubject[ConversationStore]

TURN = (
    Message.user("Is laptop-7 registered? 🚀 Größe 日本"),
    Message.assistant("", (ToolCallPart("call_1", "lookup", {"term": "laptop-7"}),)),
    Message.tool(ToolResultPart("call_1", "lookup", '{"found": true}')),
    Message.assistant("Yes, laptop-7 is registered."),
)


@CONVERSATION_STORES.check()
async def check_messages_round_trip_in_order(subject: Subject) -> None:
    """Every part of every message comes back as it was stored, in order, with
    contiguous indexes and the run that wrote it."""
    with subject.opened() as store:
        conversation = await store.create("helpdesk", {"channel": "web"})
        stored = await store.append(conversation.id, TURN, run_id="run-1")
        assert [s.index for s in stored] == [0, 1, 2, 3]
        assert await store.messages(conversation.id) == list(TURN)
        records = await store.records(conversation.id, 1, 3)
        assert [r.index for r in records] == [1, 2] and {r.run_id for r in records} == {"run-1"}
        image = Message.user(
            "What is this?", ImagePart(data="iVBORw0KGgo=", media_type="image/png")
        )
        [more] = await store.append(conversation.id, [image])
        assert more.index == 4 and (await store.messages(conversation.id, 4)) == [image]
        row = await store.get(conversation.id)
        assert (row.copilot, row.message_count, row.metadata) == ("helpdesk", 5, {"channel": "web"})
        assert row.title.startswith("Is laptop-7 registered?")


@CONVERSATION_STORES.check()
async def check_sent_forms_come_back_beside_the_shown_messages(subject: Subject) -> None:
    """A message stored with its sent form (what it stood for in the model's prompt)
    keeps both: `messages` and `records().message` give what people saw, `sent` and
    `prompt` what the model read; a message stored without one is its own prompt."""
    asked = Message.user(
        "Passages:\n\n[1] (vpn.md)\nThe VPN drops after 30 minutes.\n\nQuestion: Why?"
    )
    steps = (Message.user("Step: answer"), Message.assistant('{"answer": "Idle [1]."}'))
    with subject.opened() as store:
        conversation = await store.create("helpdesk")
        shown = (Message.user("Why?"), Message.assistant("Idle [1]."))
        await store.append(conversation.id, shown, run_id="run-1", sent=[(asked,), steps])
        await store.append(conversation.id, TURN, sent=[None, None, None, None])
        records = await store.records(conversation.id)
        assert [r.message for r in records] == [*shown, *TURN]
        assert await store.messages(conversation.id) == [*shown, *TURN]
        assert [r.sent for r in records[:3]] == [(asked,), steps, None]
        assert [m for r in records for m in r.prompt] == [asked, *steps, *TURN]
        with expect(ConversationError):  # one sent form per message
            await store.append(conversation.id, shown, sent=[None])
        assert (await store.get(conversation.id)).message_count == 6


@CONVERSATION_STORES.check()
async def check_unknown_conversations_are_not_found(subject: Subject) -> None:
    """Reading, appending to or deleting a conversation that does not exist raises
    `NotFoundError`; a deleted conversation is gone with its messages."""
    with subject.opened() as store:
        for call in (
            lambda: store.get("nope"),
            lambda: store.append("nope", [Message.user("hi")]),
            lambda: store.delete("nope"),
        ):
            with expect(NotFoundError):
                await call()
        conversation = await store.create("helpdesk")
        await store.append(conversation.id, TURN)
        await store.delete(conversation.id)
        with expect(NotFoundError):
            await store.get(conversation.id)
        assert all(c.id != conversation.id for c in await store.list())


@CONVERSATION_STORES.check()
async def check_listing_is_newest_first_per_copilot_and_owner(subject: Subject) -> None:
    """`list` gives the most recently updated first, filtered by copilot and by the key
    that started the conversation."""
    with subject.opened() as store:
        first = await store.create("helpdesk", key_id="key-a")
        second = await store.create("helpdesk", key_id="key-b")
        other = await store.create("finance")
        await store.append(first.id, [Message.user("later question")])
        listed = [c.id for c in await store.list("helpdesk")]
        assert listed[:2] == [first.id, second.id], listed
        assert other.id not in listed
        assert [c.id for c in await store.list(key_id="key-b")] == [second.id]
        assert len(await store.list(limit=1)) == 1


@CONVERSATION_STORES.check()
async def check_a_summary_is_stored_only_over_the_one_it_replaces(subject: Subject) -> None:
    """`set_summary` stores only when the stored summary still covers what the caller
    read, so an older summary never overwrites a newer one."""
    with subject.opened() as store:
        conversation = await store.create("helpdesk")
        await store.append(conversation.id, TURN)
        assert await store.set_summary(conversation.id, "asked about laptop-7", 2, expected_upto=0)
        assert not await store.set_summary(conversation.id, "stale", 3, expected_upto=0)
        row = await store.get(conversation.id)
        assert (row.summary, row.summary_upto) == ("asked about laptop-7", 2)


@CONVERSATION_STORES.check()
async def check_the_asked_for_slot_is_kept_until_replaced(subject: Subject) -> None:
    """What the last answer asked the user for (a request waiting for its id) comes back
    with the conversation's row, in order, until it is replaced or dropped; appends do
    not touch it, and a conversation that does not exist is not found."""
    with subject.opened() as store:
        conversation = await store.create("helpdesk")
        assert conversation.asked == ()
        slots = (AskedFor("ticket_status", "ticket_id"), AskedFor("reopen", "ticket_id"))
        await store.set_asked(conversation.id, slots)
        await store.append(conversation.id, TURN)
        assert (await store.get(conversation.id)).asked == slots
        assert [c.asked for c in await store.list("helpdesk")] == [slots]
        await store.set_asked(conversation.id, slots[:1])
        assert (await store.get(conversation.id)).asked == slots[:1]
        await store.set_asked(conversation.id, ())
        assert (await store.get(conversation.id)).asked == ()
        with expect(NotFoundError):
            await store.set_asked("nope", slots)


@CONVERSATION_STORES.check(THREADS)
async def check_concurrent_appends_keep_every_message_once(subject: Subject) -> None:
    """Appends from several coroutines and threads at once lose nothing and never share
    an index."""
    with subject.opened() as store:
        conversation = await store.create("helpdesk")

        async def writer(n: int) -> None:
            for i in range(5):
                await store.append(conversation.id, [Message.user(f"{n}-{i}")])

        await asyncio.gather(*(writer(n) for n in range(4)))

        def in_thread() -> None:
            asyncio.run(writer(9))

        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join()
        records = await store.records(conversation.id)
        assert [r.index for r in records] == list(range(25))
        assert len({r.message.text for r in records}) == 25


@CONVERSATION_STORES.check(PERSISTENT)
async def check_conversations_survive_reopening(subject: Subject) -> None:
    """A store opened again sees what an earlier one wrote."""
    with subject.opened() as store:
        conversation = await store.create("helpdesk")
        await store.append(conversation.id, TURN)
    with subject.opened() as again:
        assert await again.messages(conversation.id) == list(TURN)
