"""The loopback server of `pilothouse.testing`: a fake's request still in flight when
the test is done with it is cancelled, not waited for; a closed port stays closed."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import httpx
import pytest

from pilothouse.testing.loopback import serve_app
from pilothouse.testing.ports import closed_port


def test_a_stalled_request_is_cancelled_when_the_server_stops() -> None:
    # A fake that stalls (a timeout test) held the test's end for the rest of its stall.
    ended: list[str] = []
    stalling = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        stalling.set()
        try:
            await asyncio.sleep(30)
            ended.append("finished")
        except asyncio.CancelledError:
            ended.append("cancelled")
            raise

    with serve_app(app) as url:
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(url, timeout=httpx.Timeout(5, read=0.2))
        assert stalling.wait(5)
    assert ended == ["cancelled"]


def test_a_finished_answer_is_unaffected() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with serve_app(app) as url:
        assert httpx.get(url).text == "ok"


def test_a_closed_port_is_refused_and_no_other_socket_can_take_it() -> None:
    # Under xdist another worker (or a server a test starts on port 0) could bind a
    # port that was only free a moment ago: the port stays held, never listening.
    port = closed_port()
    with socket.socket() as client, pytest.raises(ConnectionRefusedError):
        client.connect(("127.0.0.1", port))
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        with pytest.raises(OSError, match="in use"):
            other.bind(("127.0.0.1", port))
    assert closed_port() == port  # one held port serves every such test
