"""The status the server records for each copilot run, read back through `/api/runs`:
JSON and streamed answers, runs paused for approval, failed runs (before and after the
first token), clients that leave mid-stream, and fallback chains."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from pilothouse.errors import UnavailableError
from pilothouse.models import FunctionModel, ScriptedModel, tool_call
from pilothouse.models.testing import BreakAfter
from pilothouse.server.auth import ADMIN
from pilothouse.tracing import attributes as A
from pilothouse.types import Message, ModelRequest, TextPart
from tests.server.test_bad_input import SlowModel, wait_for
from tests.server.test_sdk_copilot import NAME, sdk, vpn_answer

SCOPES = (f"chat:{NAME}", ADMIN)
QUESTION = [{"role": "user", "content": "Which VPN client do we use?"}]


def run_of(base: str, key: str, run_id: str) -> dict[str, Any]:
    """The run as `/api/runs/{id}` shows it (waiting briefly: a run is written when its
    span ends, which for a stream is just after the last byte went out)."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as http:
        deadline = time.monotonic() + 10
        while True:
            reply = http.get(f"/api/runs/{run_id}")
            if reply.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert reply.status_code == 200, reply.text
        listed = http.get("/api/runs").json()["runs"]
    run: dict[str, Any] = reply.json()
    [row] = [r for r in listed if r["run_id"] == run["run_id"]]
    assert (row["status"], row["error"]) == (run["status"], run["error"])
    return run


def latest_run(base: str, key: str) -> dict[str, Any]:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as http:
        deadline = time.monotonic() + 10
        while not (runs := http.get("/api/runs").json()["runs"]):
            assert time.monotonic() < deadline, "no run was recorded"
            time.sleep(0.02)
    return run_of(base, key, runs[0]["run_id"])


def attempts(run: dict[str, Any]) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []

    def walk(span: dict[str, Any]) -> None:
        if span["kind"] == "model":
            a = span["attributes"]
            found.append((a[A.REQUEST_MODEL], a[A.MODEL_STATUS], span["status"]))
        for child in span["children"]:
            walk(child)

    for root in run["spans"]:
        walk(root)
    return found


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_is_recorded_completed(serve: Any, stream: bool) -> None:
    base, key = serve(FunctionModel(vpn_answer, model_id="local:qwen", chunk_size=3), scopes=SCOPES)
    with sdk(base, key) as client:
        if stream:
            chunks = list(
                client.chat.completions.create(model=NAME, messages=QUESTION, stream=True)
            )  # type: ignore[arg-type]
            run_id = chunks[-1].model_extra["pilothouse"]["run_id"]  # type: ignore[index]
        else:
            reply = client.chat.completions.create(model=NAME, messages=QUESTION)  # type: ignore[arg-type]
            run_id = reply.model_extra["pilothouse"]["run_id"]  # type: ignore[index]
    run = run_of(base, key, run_id)
    assert (run["status"], run["error"]) == ("completed", None)
    assert run["spans"][0]["status"] == "ok"
    assert attempts(run) == [("local:qwen", "completed", "ok")]


@pytest.mark.parametrize("stream", [False, True])
def test_a_run_paused_for_approval_is_recorded_paused(serve: Any, stream: bool) -> None:
    model = ScriptedModel([tool_call("create_ticket", {"summary": "laptop"}, id="c1"), "Done."])
    base, key = serve(model, scopes=SCOPES)
    ask = [{"role": "user", "content": "Open a ticket for my laptop"}]
    with sdk(base, key) as client:
        if stream:
            chunks = list(client.chat.completions.create(model=NAME, messages=ask, stream=True))  # type: ignore[arg-type]
            info = chunks[-1].model_extra["pilothouse"]  # type: ignore[index]
        else:
            info = client.chat.completions.create(model=NAME, messages=ask).model_extra[
                "pilothouse"
            ]  # type: ignore[arg-type,index]
        assert info["status"] == "awaiting_approval"
        assert run_of(base, key, info["run_id"])["status"] == "awaiting_approval"
        resumed = client.chat.completions.create(
            model=NAME,
            messages=ask,  # type: ignore[arg-type]
            stream=stream,
            extra_body={"pilothouse": {"run_id": info["run_id"], "approve": ["c1"]}},
        )
        last = list(resumed)[-1] if stream else resumed  # type: ignore[call-overload]
    after = last.model_extra["pilothouse"]  # type: ignore[union-attr]
    assert after["status"] == "completed" and after["run_id"] != info["run_id"]
    resumed_run = run_of(base, key, after["run_id"])
    assert resumed_run["status"] == "completed"
    assert resumed_run["spans"][0]["attributes"][A.RUN_RESUMES] == info["run_id"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_run_that_cannot_answer_is_recorded_failed(serve: Any, stream: bool) -> None:
    down = ScriptedModel([UnavailableError("upstream down")], model_id="openai:gpt-4.1-mini")
    base, key = serve(down, scopes=SCOPES)
    with sdk(base, key) as client, pytest.raises(openai.APIStatusError) as failed:
        reply = client.chat.completions.create(model=NAME, messages=QUESTION, stream=stream)  # type: ignore[arg-type,call-overload]
        if stream:
            list(reply)
    assert failed.value.status_code == 502
    run = latest_run(base, key)
    assert run["status"] == "failed" and "upstream down" in run["error"]
    assert run["spans"][0]["status"] == "error"
    assert attempts(run) == [("openai:gpt-4.1-mini", "failed", "error")]


def test_a_stream_that_breaks_mid_answer_is_recorded_failed(serve: Any) -> None:
    broken = ScriptedModel([BreakAfter("Use Wire", UnavailableError("connection reset"))])
    base, key = serve(broken, scopes=SCOPES)
    with sdk(base, key) as client, pytest.raises(openai.APIError):
        list(client.chat.completions.create(model=NAME, messages=QUESTION, stream=True))  # type: ignore[arg-type]
    run = latest_run(base, key)
    assert run["status"] == "failed" and "connection reset" in run["error"]


def test_a_client_that_leaves_mid_stream_stops_the_run_and_is_recorded_cancelled(
    serve: Any,
) -> None:
    model = SlowModel()
    base, key = serve(model, scopes=SCOPES)
    body = {"model": NAME, "stream": True, "messages": QUESTION}
    with (
        httpx.Client(base_url=base, timeout=10) as http,
        http.stream(
            "POST", "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        ) as reply,
    ):
        for line in reply.iter_lines():
            # The answer filter holds an answer's first words until they cannot be
            # internal text (copilot/answer_filter.py); then words stream one by one.
            if "w6" in line:
                break
    assert wait_for(model.closed.is_set), "the copilot's model kept streaming for nobody"
    run = latest_run(base, key)
    assert run["status"] == "cancelled" and "cancelled" in run["error"]
    assert attempts(run) == [("test:slow", "cancelled", "error")]


@pytest.mark.parametrize("stream", [False, True])
def test_a_fallback_chain_records_each_attempt(serve: Any, stream: bool) -> None:
    down = ScriptedModel([UnavailableError("down")], model_id="openai:gpt-4.1-mini")

    def answer(request: ModelRequest) -> Message:
        return Message("assistant", (TextPart("Use WireGuard [1]."),))

    base, key = serve(down, FunctionModel(answer, model_id="local:qwen"), scopes=SCOPES)
    with sdk(base, key) as client:
        reply = client.chat.completions.create(model=NAME, messages=QUESTION, stream=stream)  # type: ignore[arg-type,call-overload]
        last = list(reply)[-1] if stream else reply
    run = run_of(base, key, last.model_extra["pilothouse"]["run_id"])
    assert (run["status"], run["model"], run["error"]) == ("completed", "local:qwen", None)
    assert attempts(run) == [
        ("openai:gpt-4.1-mini", "failed", "error"),
        ("local:qwen", "completed", "ok"),
    ]


def test_a_stream_that_asked_for_progress_reports_a_failure_in_the_stream(serve: Any) -> None:
    """With early progress the `retrieved` chunk has started the response, so the
    failure comes as an error event (what the client opted into); the run is failed."""
    down = ScriptedModel([UnavailableError("upstream down")], model_id="openai:gpt-4.1-mini")
    base, key = serve(down, scopes=SCOPES)
    with sdk(base, key) as client, pytest.raises(openai.APIError) as failed:
        list(
            client.chat.completions.create(
                model=NAME,
                messages=QUESTION,  # type: ignore[arg-type]
                stream=True,
                extra_body={"pilothouse": {"progress": True}},
            )
        )
    assert not isinstance(failed.value, openai.APIStatusError)
    assert "upstream down" in str(failed.value)
    assert latest_run(base, key)["status"] == "failed"
    with sdk(base, key) as client, pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=NAME,
            messages=QUESTION,  # type: ignore[arg-type]
            stream=True,
            extra_body={"pilothouse": {"progress": "yes"}},
        )
    assert "pilothouse.progress must be a boolean" in str(refused.value)
