"""ConversationMemory: the window sent verbatim, and the rolling summary beyond it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pilothouse.copilot.conversation_records import StoredMessage
from pilothouse.copilot.conversations import ConversationStore
from pilothouse.copilot.definition_sections import MemorySettings
from pilothouse.copilot.memory import (
    SUMMARY_NOTE_PREFIX,
    SUMMARY_SYSTEM_PROMPT,
    ConversationMemory,
    render_for_summary,
    summary_request,
    window_start,
)
from pilothouse.errors import UnavailableError
from pilothouse.models.testing import FunctionModel, ScriptedModel
from pilothouse.types import (
    ImagePart,
    Message,
    ModelRequest,
    ToolCallPart,
    ToolResultPart,
)


@dataclass(frozen=True)
class Policy:
    window: int
    summarize: bool = True


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ConversationStore]:
    s = ConversationStore(tmp_path / "pilothouse.db")
    yield s
    s.close()


def call(cid: str, name: str = "lookup") -> Message:
    return Message.assistant("", (ToolCallPart(cid, name, {"id": cid}),))


def result(cid: str, name: str = "lookup", content: str = "ok") -> Message:
    return Message.tool(ToolResultPart(cid, name, content))


def turns(n: int) -> list[Message]:
    """n user/assistant pairs: u0, a0, u1, a1, ..."""
    out: list[Message] = []
    for i in range(n):
        out += [Message.user(f"u{i}"), Message.assistant(f"a{i}")]
    return out


async def new_conversation(store: ConversationStore, messages: list[Message]) -> str:
    conv = await store.create("helpdesk")
    await store.append(conv.id, messages)
    return conv.id


def prompt_of(request: ModelRequest) -> str:
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.messages[0].text == SUMMARY_SYSTEM_PROMPT
    return request.messages[1].text


# --- the window ---------------------------------------------------------------------

TOOL_HISTORY = [
    Message.user("q1"),  # 0
    call("c1"),  # 1
    result("c1"),  # 2
    Message.assistant("a1"),  # 3
    Message.user("q2"),  # 4
    Message.assistant("", (ToolCallPart("c2", "x"), ToolCallPart("c3", "y"))),  # 5
    result("c2", "x"),  # 6
    result("c3", "y"),  # 7
    Message.assistant("a2"),  # 8
]


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (0, 9),  # nothing verbatim
        (1, 8),
        (2, 5),  # would start at result c3: back to the call at 5 (both results kept)
        (3, 5),  # would start at result c2: back to 5
        (4, 5),
        (5, 4),
        (6, 3),
        (7, 1),  # would start at result c1: back to its call at 1
        (8, 1),
        (9, 0),
        (50, 0),  # larger than the history
    ],
)
def test_window_never_separates_calls_from_results(window: int, expected: int) -> None:
    assert window_start(TOOL_HISTORY, window) == expected


def test_window_skips_orphan_tool_results_at_the_start() -> None:
    history = [result("old"), result("old2"), Message.user("q"), Message.assistant("a")]
    assert window_start(history, 10) == 2
    assert window_start(history, 3) == 2
    # Tool results after a user message (no assistant called them) are orphans too.
    history = [Message.user("q"), result("x"), Message.assistant("a")]
    assert window_start(history, 2) == 2
    assert window_start([], 5) == 0
    assert window_start([result("x")], 1) == 1


async def test_context_without_summary_is_the_window(store: ConversationStore) -> None:
    cid = await new_conversation(store, TOOL_HISTORY)
    memory = ConversationMemory(store, Policy(window=2, summarize=False))
    ctx = await memory.context(cid)
    assert ctx.messages == tuple(TOOL_HISTORY[5:])
    assert ctx.window_start == 5 and ctx.message_count == 9
    assert ctx.summary == "" and ctx.summary_calls == ()


async def test_window_larger_than_history_sends_everything_and_never_summarises(
    store: ConversationStore,
) -> None:
    cid = await new_conversation(store, turns(3))
    model = ScriptedModel([])  # any call would fail the test
    memory = ConversationMemory(store, Policy(window=12), model)
    ctx = await memory.context(cid)
    assert ctx.messages == tuple(turns(3))
    assert model.requests == []


async def test_empty_conversation(store: ConversationStore) -> None:
    cid = (await store.create("c")).id
    model = ScriptedModel([])
    ctx = await ConversationMemory(store, Policy(window=0), model).context(cid)
    assert ctx.messages == () and ctx.message_count == 0 and model.requests == []


async def test_works_with_the_copilot_yaml_memory_settings(store: ConversationStore) -> None:
    cid = await new_conversation(store, turns(10))
    memory = ConversationMemory(store, MemorySettings(window=4, summarize=False))
    assert (await memory.context(cid)).messages == tuple(turns(10)[-4:])


# --- summarisation ------------------------------------------------------------------


async def test_summarises_only_what_fell_out_and_only_once(store: ConversationStore) -> None:
    cid = await new_conversation(store, turns(5))  # 10 messages
    model = ScriptedModel(["S1", "S2"])
    memory = ConversationMemory(store, Policy(window=4), model)

    ctx = await memory.context(cid)
    assert len(model.requests) == 1
    assert prompt_of(model.requests[0]) == (
        "Summary so far:\n(none yet)\n\n"
        "Messages to add to it:\n"
        "User: u0\nAssistant: a0\nUser: u1\nAssistant: a1\nUser: u2\nAssistant: a2\n\n"
        "Write the updated summary."
    )
    assert model.requests[0].temperature == 0.0
    assert ctx.messages[0] == Message.system(SUMMARY_NOTE_PREFIX + "S1")
    assert ctx.messages[1:] == tuple(turns(5)[6:])
    assert (ctx.summary, ctx.summary_upto) == ("S1", 6)
    stored = await store.get(cid)
    assert (stored.summary, stored.summary_upto) == ("S1", 6)

    # Nothing new fell out: no call, the stored summary is reused.
    again = await memory.context(cid)
    assert len(model.requests) == 1
    assert again.messages == ctx.messages

    # Two more messages push u3, a3 out: only those are summarised, on top of S1.
    await store.append(cid, [Message.user("u5"), Message.assistant("a5")])
    ctx = await memory.context(cid)
    assert len(model.requests) == 2
    assert prompt_of(model.requests[1]) == (
        "Summary so far:\nS1\n\n"
        "Messages to add to it:\nUser: u3\nAssistant: a3\n\n"
        "Write the updated summary."
    )
    assert ctx.messages[0].text == SUMMARY_NOTE_PREFIX + "S2"
    assert [m.text for m in ctx.messages[1:]] == ["u4", "a4", "u5", "a5"]


async def test_summary_is_reused_by_a_new_store_and_memory(
    store: ConversationStore, tmp_path: Path
) -> None:
    cid = await new_conversation(store, turns(4))
    await ConversationMemory(store, Policy(window=2), ScriptedModel(["kept"])).context(cid)
    with ConversationStore(tmp_path / "pilothouse.db") as other:
        model = ScriptedModel([])
        ctx = await ConversationMemory(other, Policy(window=2), model).context(cid)
    assert model.requests == []
    assert ctx.messages[0].text.endswith("kept")


async def test_window_zero_summarises_everything(store: ConversationStore) -> None:
    cid = await new_conversation(store, turns(2))
    model = ScriptedModel(["all of it"])
    ctx = await ConversationMemory(store, Policy(window=0), model).context(cid)
    assert ctx.window == ()
    assert ctx.messages == (Message.system(SUMMARY_NOTE_PREFIX + "all of it"),)
    assert "User: u0\nAssistant: a0\nUser: u1\nAssistant: a1" in prompt_of(model.requests[0])


async def test_tool_calls_and_results_are_rendered_as_short_text(
    store: ConversationStore,
) -> None:
    big = "x" * 2000
    history = [
        Message.user("Open a ticket", ImagePart(url="https://e.org/a.png")),
        call("c1", "create_ticket"),
        Message.tool(
            ToolResultPart("c1", "create_ticket", big),
            ToolResultPart("c9", "notify", "mail server down", is_error=True),
        ),
        Message.assistant("", (ToolCallPart("c2", "bad", {}, raw_arguments="{oops"),)),
        result("c2", "bad"),
        Message.assistant("Done: ticket 7."),
        Message.user("thanks"),
    ]
    cid = await new_conversation(store, history)
    model = ScriptedModel(["s"])
    ctx = await ConversationMemory(store, Policy(window=1), model, text_limit=50).context(cid)
    assert ctx.window == (Message.user("thanks"),)
    assert prompt_of(model.requests[0]).split("\n")[4:12] == [
        "User: Open a ticket",
        "User: [image]",
        'Assistant called tool create_ticket with {"id": "c1"}',
        "Tool create_ticket returned: " + "x" * 50 + "… [1950 more characters]",
        "Tool notify failed with: mail server down",
        "Assistant called tool bad with {oops",
        "Tool bad returned: ok",
        "Assistant: Done: ticket 7.",
    ]
    # What is stored stays exactly what was sent.
    assert (await store.messages(cid))[2].tool_results[0].content == big


def test_summary_request_shape() -> None:
    request = summary_request("old", [Message.user("hi")], max_tokens=123)
    assert request.max_output_tokens == 123
    assert request.tools == ()
    assert render_for_summary([Message.system("be brief"), Message.assistant("")]) == (
        "System: be brief"
    )


async def test_summariser_failure_keeps_old_summary_and_retries_next_time(
    store: ConversationStore, caplog: pytest.LogCaptureFixture
) -> None:
    cid = await new_conversation(store, turns(3))
    model = ScriptedModel(["S1", UnavailableError("down", model="test:scripted"), "S2"])
    memory = ConversationMemory(store, Policy(window=2), model)
    await memory.context(cid)  # summarises u0..a1 into S1
    await store.append(cid, turns(1))  # u0/a0 again: pushes u2, a2 out

    with caplog.at_level(logging.WARNING, logger="pilothouse.copilot.memory"):
        failed = await memory.context(cid)
    assert failed.summary_failed
    assert isinstance(failed.summary_calls[0][1], UnavailableError)
    assert failed.messages[0].text == SUMMARY_NOTE_PREFIX + "S1"
    assert failed.messages[1:] == tuple(turns(1))
    assert (failed.summary, failed.summary_upto) == ("S1", 4)
    assert f"conversation {cid}: summarising messages 4-5 failed" in caplog.text
    assert (await store.get(cid)).summary == "S1"

    retried = await memory.context(cid)
    assert len(model.requests) == 3
    assert model.requests[2] == model.requests[1]  # the same range is tried again
    assert not retried.summary_failed
    assert (retried.summary, retried.summary_upto) == ("S2", 6)


async def test_empty_summary_counts_as_a_failure(store: ConversationStore) -> None:
    cid = await new_conversation(store, turns(3))
    model = ScriptedModel(["   "])
    ctx = await ConversationMemory(store, Policy(window=2), model).context(cid)
    assert ctx.summary_failed and ctx.summary == ""
    assert ctx.messages == tuple(turns(3)[4:])
    assert (await store.get(cid)).summary_upto == 0


async def test_long_backlog_is_summarised_in_batches(store: ConversationStore) -> None:
    cid = await new_conversation(store, turns(5))  # 10 messages, 8 fall out of a window of 2
    model = FunctionModel(lambda r: f"S{len(model.requests)}")
    ctx = await ConversationMemory(store, Policy(window=2), model, batch=3).context(cid)
    prompts = [prompt_of(r) for r in model.requests]
    assert len(prompts) == 3
    assert "(none yet)" in prompts[0] and "User: u0\nAssistant: a0\nUser: u1\n\n" in prompts[0]
    assert (
        "so far:\nS1\n" in prompts[1]
        and "Assistant: a1\nUser: u2\nAssistant: a2\n\n" in (prompts[1])
    )
    assert "so far:\nS2\n" in prompts[2] and "User: u3\nAssistant: a3\n\n" in prompts[2]
    assert (ctx.summary, ctx.summary_upto) == ("S3", 8)


async def test_summary_beside_a_tool_pair_at_the_boundary(store: ConversationStore) -> None:
    cid = await new_conversation(store, TOOL_HISTORY)
    model = ScriptedModel(["S"])
    ctx = await ConversationMemory(store, Policy(window=3), model).context(cid)
    # The window starts at the call (5), so only 0..4 are summarised.
    assert ctx.window_start == 5
    assert prompt_of(model.requests[0]).endswith("User: q2\n\nWrite the updated summary.")
    assert ctx.messages[1] == TOOL_HISTORY[5]


async def test_summary_note_as_user_message(store: ConversationStore) -> None:
    cid = await new_conversation(store, turns(2))
    memory = ConversationMemory(store, Policy(window=2), ScriptedModel(["S"]), note_role="user")
    ctx = await memory.context(cid)
    assert ctx.messages[0] == Message.user(SUMMARY_NOTE_PREFIX + "S")


async def test_without_a_summariser_dropped_messages_are_not_sent(
    store: ConversationStore,
) -> None:
    cid = await new_conversation(store, turns(3))
    ctx = await ConversationMemory(store, Policy(window=2, summarize=True)).context(cid)
    assert ctx.messages == tuple(turns(3)[4:])


async def test_concurrent_turns_summarise_once(store: ConversationStore) -> None:
    cid = await new_conversation(store, turns(4))

    async def slow(request: ModelRequest) -> str:
        await asyncio.sleep(0.05)
        return "S"

    model = FunctionModel(slow)
    memory = ConversationMemory(store, Policy(window=2), model)
    results = await asyncio.gather(*(memory.context(cid) for _ in range(5)))
    assert len(model.requests) == 1
    assert {r.messages for r in results} == {results[0].messages}


async def test_two_processes_summarising_at_once_never_regress(
    store: ConversationStore, tmp_path: Path
) -> None:
    cid = await new_conversation(store, turns(4))
    entered = asyncio.Event()
    release = asyncio.Event()

    async def blocked(request: ModelRequest) -> str:
        entered.set()
        await release.wait()
        return "late"

    with ConversationStore(tmp_path / "pilothouse.db") as other:
        slow = ConversationMemory(other, Policy(window=2), FunctionModel(blocked))
        task = asyncio.create_task(slow.context(cid))
        await entered.wait()
        # Meanwhile another process summarises further (a smaller window).
        fast = ConversationMemory(store, Policy(window=1), ScriptedModel(["fast"]))
        await fast.context(cid)
        release.set()
        late = await task
    stored = await store.get(cid)
    assert (stored.summary, stored.summary_upto) == ("fast", 7)
    # The slow one lost the race and took the newer summary instead of overwriting it.
    assert (late.summary, late.summary_upto) == ("fast", 7)


async def test_long_history_is_not_loaded_whole(
    store: ConversationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = turns(100)
    history[-3:-3] = [call("c1"), result("c1"), result("c1b")] * 8  # a long tool run at the end
    cid = await new_conversation(store, history)
    await store.set_summary(cid, "old", len(history) - 30, expected_upto=0)
    starts: list[int] = []
    original = store.records

    async def spy(
        conversation_id: str, start: int = 0, end: int | None = None
    ) -> list[StoredMessage]:
        starts.append(start)
        return await original(conversation_id, start, end)

    monkeypatch.setattr(store, "records", spy)
    model = ScriptedModel(["new"])
    ctx = await ConversationMemory(store, Policy(window=5), model).context(cid)
    assert starts and min(starts) > 100
    # Same answer as computing over the whole history.
    expected = window_start(history, 5)
    assert ctx.window_start == expected
    assert ctx.window == tuple(history[expected:])
    assert ctx.window[0].tool_calls
    assert (ctx.summary, ctx.summary_upto) == ("new", expected)


async def test_window_inside_a_long_run_of_tool_results_reaches_back_to_the_call(
    store: ConversationStore,
) -> None:
    calls = tuple(ToolCallPart(f"c{i}", "probe") for i in range(40))
    history = [
        *turns(30),
        Message.user("check every host"),
        Message.assistant("", calls),  # index 61
        *(result(f"c{i}", "probe") for i in range(40)),  # one message per result
        Message.assistant("all fine"),
    ]
    cid = await new_conversation(store, history)
    ctx = await ConversationMemory(store, Policy(window=3, summarize=False)).context(cid)
    assert ctx.window_start == 61
    assert ctx.window == tuple(history[61:])
