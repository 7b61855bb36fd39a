"""LangChain's ChatOpenAI against a copilot: it drops the `pilothouse` body field, so
the run id, conversation, status, model and citations also come where it keeps them:
the completion id and, with `include_response_headers=True`, the response headers.
Also: the last chunk of a stream with `include_usage` carries the extension."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from langchain_openai import ChatOpenAI

from pilothouse.models import FunctionModel
from pilothouse.types import ModelRequest
from tests.server.test_sdk_copilot import NAME, ext, sdk

QUESTION = "Which VPN client do we use?"


def vpn_answer(request: ModelRequest) -> str:
    return "Use WireGuard [1]."


def chat(base: str, key: str, **options: Any) -> ChatOpenAI:
    return ChatOpenAI(base_url=f"{base}/v1", api_key=key, model=NAME, max_retries=0, **options)  # type: ignore[arg-type]


def test_langchain_keeps_the_run_id_and_citations(serve: Any) -> None:
    base, key = serve(FunctionModel(vpn_answer, model_id="local:qwen"))
    plain = chat(base, key).invoke(QUESTION)
    assert plain.content == "Use WireGuard [1]."
    run_id = plain.response_metadata["id"].removeprefix("chatcmpl-")
    assert len(run_id) == 32  # the run id, even without the headers

    message = chat(base, key, include_response_headers=True).invoke(QUESTION)
    meta = message.response_metadata
    headers = meta["headers"]
    assert meta["id"] == f"chatcmpl-{headers['x-pilothouse-run-id']}"
    assert meta["model_name"] == headers["x-pilothouse-model"] == "local:qwen"
    assert headers["x-pilothouse-copilot"] == NAME
    assert headers["x-pilothouse-status"] == "completed"
    assert headers["x-pilothouse-conversation-id"]
    [citation] = json.loads(headers["x-pilothouse-citations"])
    assert citation["number"] == 1 and citation["source"].endswith("vpn.md")
    assert "VPN" in citation["headings"]


def test_langchain_streams_keep_the_run_id_and_the_passages(serve: Any) -> None:
    base, key = serve(FunctionModel(vpn_answer, model_id="local:qwen", chunk_size=3))
    chunks = list(chat(base, key, include_response_headers=True).stream(QUESTION))
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk  # type: ignore[assignment]
    assert full.content == "Use WireGuard [1]."
    headers = full.response_metadata["headers"]
    assert len(headers["x-pilothouse-run-id"]) == 32
    assert headers["x-pilothouse-copilot"] == NAME
    # the passages the [n] refer to (the citations are known only at the end)
    passages = json.loads(headers["x-pilothouse-passages"])
    assert passages[0]["number"] == 1 and passages[0]["source"].endswith("vpn.md")


def test_the_last_chunk_with_include_usage_carries_the_extension(serve: Any) -> None:
    base, key = serve(FunctionModel(vpn_answer, model_id="local:qwen", chunk_size=3))
    with sdk(base, key) as client:
        chunks = list(
            client.chat.completions.create(
                model=NAME,
                messages=[{"role": "user", "content": QUESTION}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.total_tokens > 0
    info = ext(last)
    assert info["status"] == "completed" and info["citations"][0]["number"] == 1
    assert last.id == f"chatcmpl-{info['run_id']}"
    finish = chunks[-2]  # the finish chunk keeps it too
    assert finish.choices[0].finish_reason == "stop" and ext(finish)["run_id"] == info["run_id"]


def test_a_stream_says_at_once_how_many_passages_the_model_reads(serve: Any) -> None:
    """Asked for, the `retrieved` progress chunk reaches the client while the model is
    still silent (the model here answers only once the client has seen it)."""
    seen = threading.Event()

    async def slow_answer(request: ModelRequest) -> str:
        shown = await asyncio.to_thread(seen.wait, 30)
        return "Use WireGuard [1]." if shown else "the client saw nothing meanwhile"

    base, key = serve(FunctionModel(slow_answer, model_id="local:qwen"))
    events, text = [], ""
    with sdk(base, key) as client:
        stream = client.chat.completions.create(
            model=NAME,
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
            extra_body={"pilothouse": {"progress": True}},
        )
        for chunk in stream:
            extension = (
                ext(chunk) if chunk.model_extra and "pilothouse" in chunk.model_extra else {}
            )
            if "event" in extension:
                events.append(extension)
                seen.set()
            text += "".join(c.delta.content or "" for c in chunk.choices)
    assert text == "Use WireGuard [1]."
    assert events[0] == {"event": "retrieved", "passages": 2}
