"""The official openai SDK against a copilot: the answer, its citations and the model
actually used in the extension field, streaming, history, stored conversations, the
copilot's own tool calls, and the approval round trip."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import openai
import pytest

from pilothouse.errors import UnavailableError
from pilothouse.models import FunctionModel, ScriptedModel, tool_call
from pilothouse.types import Message, ModelRequest, TextPart
from tests.server.conftest import COPILOT_NAME as NAME


def last_user(request: ModelRequest) -> str:
    return next(m.text for m in reversed(request.messages) if m.role == "user")


def vpn_answer(request: ModelRequest) -> str:
    assert "WireGuard" in last_user(request)  # the grounding reached the model
    return "Use WireGuard [1]."


def ext(obj: Any) -> dict[str, Any]:
    extra = obj.model_extra or {}
    value: dict[str, Any] = extra["pilothouse"]
    return value


def sdk(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)


def test_answer_with_citations_and_the_model_used(serve: Any) -> None:
    base, key = serve(FunctionModel(vpn_answer, model_id="local:qwen"))
    with sdk(base, key) as client:
        reply = client.chat.completions.create(
            model=NAME, messages=[{"role": "user", "content": "Which VPN client do we use?"}]
        )
    assert reply.choices[0].message.content == "Use WireGuard [1]."
    assert reply.model == "local:qwen"
    info = ext(reply)
    assert info["copilot"] == NAME and info["status"] == "completed"
    assert info["model"] == "local:qwen"
    [citation] = info["citations"]
    assert citation["source"].endswith("vpn.md") and "VPN" in citation["headings"]
    assert info["run_id"] and info["conversation_id"]


def test_fallback_shows_the_model_that_answered(serve: Any) -> None:
    broken = ScriptedModel([UnavailableError("down")], model_id="openai:gpt-4.1-mini")
    base, key = serve(broken, FunctionModel(vpn_answer, model_id="local:qwen"))
    with sdk(base, key) as client:
        reply = client.chat.completions.create(
            model=NAME, messages=[{"role": "user", "content": "Which VPN client do we use?"}]
        )
    assert reply.model == "local:qwen"


def test_stream_carries_text_then_the_extension_on_the_last_chunk(serve: Any) -> None:
    base, key = serve(FunctionModel(vpn_answer, model_id="local:qwen", chunk_size=3))
    with sdk(base, key) as client:
        chunks = list(
            client.chat.completions.create(
                model=NAME,
                messages=[{"role": "user", "content": "Which VPN client do we use?"}],
                stream=True,
            )
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Use WireGuard [1]."
    # Several pieces (the answer filter holds the words that open an internal text,
    # here "Use", until the next word shows they do not: copilot/answer_filter.py).
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.model == "local:qwen"
    assert ext(last)["citations"][0]["source"].endswith("vpn.md")


async def test_async_client_and_history_from_messages(serve: Any) -> None:
    seen: list[ModelRequest] = []

    def answer(request: ModelRequest) -> str:
        seen.append(request)
        return "It is on floor 3 [1]."

    base, key = serve(FunctionModel(answer, model_id="local:qwen"))
    async with openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0) as client:
        reply = await client.chat.completions.create(
            model=NAME,
            messages=[
                {"role": "system", "content": "ignored: the copilot has its instructions"},
                {"role": "user", "content": "I need to print."},
                {"role": "assistant", "content": "Which printer?"},
                {"role": "user", "content": "Where are the printers?"},
            ],
        )
    assert reply.choices[0].message.content == "It is on floor 3 [1]."
    texts = [(m.role, m.text) for m in seen[0].messages]
    assert ("user", "I need to print.") in texts
    assert ("assistant", "Which printer?") in texts
    assert not any("ignored" in t for _, t in texts)
    assert "Where are the printers?" in texts[-1][1]


def test_conversation_id_in_the_extension_continues_a_stored_conversation(serve: Any) -> None:
    seen: list[ModelRequest] = []

    def answer(request: ModelRequest) -> str:
        seen.append(request)
        return f"answer {len(seen)}"

    base, key = serve(FunctionModel(answer, model_id="local:qwen"))
    with sdk(base, key) as client:
        first = client.chat.completions.create(
            model=NAME, messages=[{"role": "user", "content": "Remember the word kiwi."}]
        )
        cid = ext(first)["conversation_id"]
        second = client.chat.completions.create(
            model=NAME,
            messages=[{"role": "user", "content": "Which word?"}],
            extra_body={"pilothouse": {"conversation_id": cid}},
        )
        assert ext(second)["conversation_id"] == cid
        with pytest.raises(openai.NotFoundError) as missing:
            client.chat.completions.create(
                model=NAME,
                messages=[{"role": "user", "content": "?"}],
                extra_body={"pilothouse": {"conversation_id": "nope"}},
            )
    history = [(m.role, m.text) for m in seen[1].messages]
    # The first turn as it was sent (with its passages), then the model's answer.
    assert history[1][0] == "user" and history[1][1].endswith("Remember the word kiwi.")
    assert history[2] == ("assistant", "answer 1")
    assert missing.value.body["code"] == "conversation_not_found"  # type: ignore[index]


def test_copilot_tool_call_round_trip(serve: Any) -> None:
    def model(request: ModelRequest) -> Message:
        last = request.messages[-1]
        if last.role == "tool":
            return Message("assistant", (TextPart(f"Found: {last.tool_results[0].content}"),))
        return tool_call("lookup", {"term": "laptop-42"}, id="call_l1")

    base, key = serve(FunctionModel(model, model_id="local:qwen"))
    with sdk(base, key) as client:
        reply = client.chat.completions.create(
            model=NAME, messages=[{"role": "user", "content": "Is laptop-42 registered?"}]
        )
        chunks = list(
            client.chat.completions.create(
                model=NAME,
                messages=[{"role": "user", "content": "Is laptop-42 registered?"}],
                stream=True,
            )
        )
    assert reply.choices[0].message.content == "Found: laptop-42: asset found"
    [outcome] = ext(reply)["tool_calls"]
    assert outcome["name"] == "lookup" and outcome["result"] == "laptop-42: asset found"
    events = [
        ext(c)["event"]
        for c in chunks
        if c.model_extra and "pilothouse" in c.model_extra and "event" in ext(c)
    ]
    assert events == ["retrieved", "tool_call_started", "tool_call_finished"]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Found: laptop-42: asset found"


def test_approval_round_trip_over_the_chat_api(serve: Any, copilot_dir: Path) -> None:
    def model(request: ModelRequest) -> Message:
        last = request.messages[-1]
        if last.role == "tool":
            return Message("assistant", (TextPart(f"Done: {last.tool_results[0].content}"),))
        return tool_call("create_ticket", {"summary": "broken laptop"}, id="call_t1")

    base, key = serve(
        FunctionModel(model, model_id="local:qwen"), scopes=(f"chat:{NAME}", f"approve:{NAME}")
    )
    question = [{"role": "user", "content": "Open a ticket for my broken laptop"}]
    with sdk(base, key) as client:
        paused = client.chat.completions.create(model=NAME, messages=question)  # type: ignore[arg-type]
        info = ext(paused)
        assert info["status"] == "awaiting_approval"
        [pending] = info["pending_approvals"]
        assert pending["name"] == "create_ticket" and pending["call_id"] == "call_t1"
        assert pending["arguments"] == {"summary": "broken laptop"}
        text = paused.choices[0].message.content or ""
        assert "approval" in text and "create_ticket" in text and info["run_id"] in text
        assert created(copilot_dir) == []  # nothing ran before the decision
        resumed = client.chat.completions.create(
            model=NAME,
            messages=question,  # type: ignore[arg-type]
            extra_body={"pilothouse": {"run_id": info["run_id"], "approve": ["call_t1"]}},
        )
        assert resumed.choices[0].message.content == "Done: HD-1001 created"
        assert ext(resumed)["status"] == "completed"
        assert ext(resumed)["tool_calls"][0]["approved"] is True
        with pytest.raises(openai.NotFoundError):  # decided already
            client.chat.completions.create(
                model=NAME,
                messages=question,  # type: ignore[arg-type]
                extra_body={"pilothouse": {"run_id": info["run_id"], "approve": ["call_t1"]}},
            )
    assert created(copilot_dir) == ["broken laptop"]


def created(folder: Path) -> list[str]:
    module = next(
        m for m in sys.modules.values() if getattr(m, "__file__", None) == str(folder / "tools.py")
    )
    return list(module.CREATED)


def test_chat_scope_is_per_copilot(serve: Any) -> None:
    base, key = serve(FunctionModel(vpn_answer, model_id="local:qwen"), scopes=("chat:other",))
    with sdk(base, key) as client, pytest.raises(openai.PermissionDeniedError) as denied:
        client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": "hi"}])
    assert denied.value.body["code"] == "insufficient_scope"  # type: ignore[index]


def test_copilot_refuses_client_tools_and_a_trailing_assistant(serve: Any) -> None:
    base, key = serve(FunctionModel(vpn_answer, model_id="local:qwen"))
    with sdk(base, key) as client:
        with pytest.raises(openai.BadRequestError) as tools:
            client.chat.completions.create(
                model=NAME,
                messages=[{"role": "user", "content": "hi"}],
                tools=[{"type": "function", "function": {"name": "x"}}],
            )
        with pytest.raises(openai.BadRequestError) as order:
            client.chat.completions.create(
                model=NAME,
                messages=[
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                ],
            )
    assert tools.value.body["param"] == "tools"  # type: ignore[index]
    assert "last message" in json.dumps(order.value.body)
