"""Bad input and bad clients: malformed JSON, wrong types, unknown models, oversized
bodies, bodies that trickle in, and clients that leave mid-stream (the upstream call is
cancelled and nothing is left behind)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from pilothouse.config import Settings
from pilothouse.models import FunctionModel
from pilothouse.models.base import AdapterEvent, Finish, ProtocolModel
from pilothouse.models.profiles import ModelProfile
from pilothouse.server.app import create_app
from pilothouse.server.context import Limits
from pilothouse.testing.loopback import serve_app
from pilothouse.types import ModelRequest, TextDelta
from tests.server.conftest import running

MODEL = "test:echo"


class SlowUpstream:
    """An OpenAI-style upstream that streams one event every 50 ms for 30 s and notes
    when its client (the gateway) goes away."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.closed = threading.Event()
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    async def chat(self, request: Request) -> StreamingResponse:
        await request.body()

        async def events() -> AsyncIterator[bytes]:
            self.started.set()
            try:
                for i in range(600):
                    delta = {"content": f"w{i} "}
                    chunk = {
                        "id": "c",
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": "slow",
                        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                    }
                    yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
                    await asyncio.sleep(0.05)
                yield b"data: [DONE]\n\n"
            finally:
                self.closed.set()

        return StreamingResponse(events(), media_type="text/event-stream")


class SlowModel(ProtocolModel):
    """A model that streams a word every 50 ms for 30 s and notes when it is stopped."""

    def __init__(self) -> None:
        super().__init__("test:slow", ModelProfile(family="test", input_price=None))
        self.words = 0
        self.closed = threading.Event()

    async def _stream(self, request: ModelRequest) -> AsyncIterator[AdapterEvent]:
        try:
            for i in range(600):
                self.words += 1
                yield TextDelta(f"w{i} ")
                await asyncio.sleep(0.05)
            yield Finish("stop")
        finally:
            self.closed.set()


@pytest.fixture
def upstream() -> Iterator[tuple[SlowUpstream, str]]:
    slow = SlowUpstream()
    with serve_app(slow.app) as url:
        yield slow, url


@pytest.fixture
def served(tmp_path: Path, upstream: tuple[SlowUpstream, str]) -> Iterator[tuple[str, Any, Any]]:
    slow_upstream, url = upstream
    settings = Settings.from_sources(home=tmp_path / "home", environ={})
    slow_model = SlowModel()
    app = create_app(
        settings,
        no_auth=True,
        limits=Limits(max_body_bytes=2000, max_upload_bytes=3000, body_timeout_s=1.0),
        models={MODEL: FunctionModel(lambda r: "pong", model_id=MODEL), "test:slow": slow_model},
        routes={
            "providers": {"slow": {"preset": "openai", "base_url": f"{url}/v1"}},
            "routes": {"slow": {"targets": ["slow:model"]}},
        },
    )

    async def read_all(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    app.add_api_route("/api/echo-size", read_all, methods=["POST"])
    with running(app) as (base, server):
        yield base, server, (slow_upstream, slow_model, app)


JSON = {"Content-Type": "application/json"}


def post(base: str, body: bytes | str, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("headers", JSON)
    with httpx.Client(base_url=base, timeout=10) as http:
        return http.post("/v1/chat/completions", content=body, **kwargs)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (b"{not json", None, "invalid_json"),
        (b"", None, "invalid_json"),
        (b"[1, 2]", None, "invalid_json"),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "model", "invalid_request"),
        (b'{"model": 5, "messages": []}', "model", "invalid_request"),
        (b'{"model": "test:echo", "messages": "hi"}', "messages", "invalid_request"),
        (b'{"model": "test:echo", "messages": [{"role": "boss"}]}', "messages[0].role", None),
        (b'{"model": "test:echo", "messages": [5]}', "messages[0]", None),
        (
            b'{"model": "test:echo", "messages": [{"role": "user", "content": "x"}], '
            b'"stream": "yes"}',
            "stream",
            None,
        ),
        (
            b'{"model": "test:echo", "messages": [{"role": "user", "content": "x"}], '
            b'"temperature": "hot"}',
            "temperature",
            None,
        ),
        (
            b'{"model": "test:echo", "messages": [{"role": "user", "content": 7}]}',
            "messages[0].content",
            None,
        ),
        (
            b'{"model": "test:echo", "messages": [{"role": "tool", "tool_call_id": "c1", '
            b'"content": "x"}]}',
            "messages[0].tool_call_id",
            None,
        ),
        (
            b'{"model": "test:echo", "messages": [{"role": "user", "content": "x"}], '
            b'"tools": [{"type": "function"}]}',
            "tools",
            None,
        ),
    ],
)
def test_bad_requests_get_openai_shaped_400s(
    served: tuple[str, Any, Any], body: bytes, param: str | None, code: str | None
) -> None:
    base, _, _ = served
    reply = post(base, body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    if code:
        assert error["code"] == code


def test_unknown_model_is_a_404(served: tuple[str, Any, Any]) -> None:
    base, _, _ = served
    for name in ("gpt-5-turbo", "nosuchprovider:model"):
        reply = post(
            base, json.dumps({"model": name, "messages": [{"role": "user", "content": "x"}]})
        )
        assert reply.status_code == 404
        assert reply.json()["error"]["code"] == "model_not_found"
        assert reply.json()["error"]["param"] == "model"
        # The Responses API and the model lookup say the same about the same name.
        with httpx.Client(base_url=base, timeout=10) as http:
            others = [
                http.post("/v1/responses", json={"model": name, "input": "x"}),
                http.get(f"/v1/models/{name}"),
            ]
        for other in others:
            assert other.status_code == 404
            assert other.json()["error"] == reply.json()["error"]


def test_oversized_bodies_get_413(served: tuple[str, Any, Any]) -> None:
    base, _, _ = served
    big = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "x" * 5000}]})
    assert post(base, big).status_code == 413  # judged from Content-Length

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
        for _ in range(10):
            yield b" " * 500

    chunked = post(base, chunks())  # type: ignore[arg-type]
    assert chunked.status_code == 413
    assert chunked.json()["error"]["code"] == "request_too_large"
    with httpx.Client(base_url=base, headers=JSON) as http:  # framework routes have a limit too
        assert http.post("/api/echo-size", content=b"x" * 2500).json() == {"size": 2500}
        assert http.post("/api/echo-size", content=b"x" * 4000).status_code == 413
        assert http.post("/api/echo-size", content=chunks()).status_code == 413  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/echo-size"])
def test_a_body_that_trickles_in_is_cut_off(served: tuple[str, Any, Any], path: str) -> None:
    base, _, _ = served
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 200\r\n\r\n{".encode()
        )
        started = time.monotonic()
        answer = b""
        sock.settimeout(0.3)
        while time.monotonic() - started < 8:
            try:
                sock.sendall(b" ")
            except OSError:
                break
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            if not data:
                break
            answer += data
            if _whole(answer):  # the head and its body (they may come in two reads)
                break
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert elapsed < 4
    assert b"request_timeout" in answer or b"did not arrive" in answer


def _whole(answer: bytes) -> bool:
    head, found, body = answer.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def loop_tasks(server: Any) -> int:
    loop = server.servers[0].get_loop()

    async def count() -> int:
        return len(asyncio.all_tasks()) - 1

    return asyncio.run_coroutine_threadsafe(count(), loop).result(5)


def wait_for(predicate: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_leaving_mid_stream_cancels_the_upstream_call(served: tuple[str, Any, Any]) -> None:
    base, server, (slow, _, app) = served
    baseline = loop_tasks(server)
    body = {"model": "slow", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    with (
        httpx.Client(base_url=base, timeout=10) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as reply,
    ):
        seen = 0
        for line in reply.iter_lines():
            seen += line.startswith("data: ")
            if seen >= 3:
                break
    # leaving the block closed the connection mid-stream
    assert slow.started.is_set()
    assert wait_for(slow.closed.is_set), "the upstream never saw the gateway hang up"
    assert wait_for(lambda: not server.server_state.tasks)
    assert wait_for(lambda: loop_tasks(server) <= baseline), "tasks were left behind"
    connector = app.context.gateway.session.connector
    assert wait_for(lambda: not connector._acquired), "an upstream connection is still held"


def test_leaving_mid_stream_stops_a_neutral_model(served: tuple[str, Any, Any]) -> None:
    base, server, (_, slow_model, _) = served
    body = {"model": "test:slow", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    with (
        httpx.Client(base_url=base, timeout=10) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as reply,
    ):
        for line in reply.iter_lines():
            if '"w2 "' in line:
                break
    assert wait_for(slow_model.closed.is_set), "the model kept streaming for nobody"
    words = slow_model.words
    time.sleep(0.3)
    assert slow_model.words == words
    assert wait_for(lambda: not server.server_state.tasks)


def test_leaving_a_json_request_cancels_it(served: tuple[str, Any, Any]) -> None:
    base, server, (slow, _, _) = served
    slow.closed.clear()
    body = {"model": "slow", "messages": [{"role": "user", "content": "go"}]}  # JSON: waits
    # The client must leave after the gateway reached the upstream: on a loaded machine
    # half a second may pass before it does, and then there is no upstream call to end.
    for patience in (0.5, 2.0, 8.0):
        with pytest.raises(httpx.ReadTimeout), httpx.Client(base_url=base, timeout=patience) as h:
            h.post("/v1/chat/completions", json=body)
        if slow.started.is_set():
            break
    assert slow.started.is_set(), "the gateway never called the upstream"
    assert wait_for(slow.closed.is_set, 15), "the upstream call outlived its client"
    assert wait_for(lambda: not server.server_state.tasks, 15)
