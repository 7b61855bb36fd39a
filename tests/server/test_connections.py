"""HTTP limits below the app, against a real server over real sockets: oversized and
numerous headers (431), heads that trickle in (408) or never come, idle keep-alive
connections, and too many connections from one address (429) or in all (503); normal
requests, keep-alive and pipelining keep working. Waits are bounded by socket
timeouts far above the limits (a hang fails the test, no timing is asserted)."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.errors import ConfigError
from pilothouse.server.app import create_app
from pilothouse.server.connections import ConnectionLimits
from pilothouse.storage import load_settings
from tests.server.conftest import running

GET = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
WAIT_S = 15.0  # far above every limit used here


@pytest.fixture
def serve(settings: Settings) -> Iterator[object]:
    stack: list[object] = []

    def start(**limits: float) -> int:
        ctx = running(create_app(settings, no_auth=True), limits=ConnectionLimits(**limits))  # type: ignore[arg-type]
        base, _ = ctx.__enter__()
        stack.append(ctx)
        return int(base.rsplit(":", 1)[1])

    yield start
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)  # type: ignore[attr-defined]


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
    sock.settimeout(WAIT_S)
    return sock


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection; TimeoutError when
    it keeps the connection open past WAIT_S."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


_LEFT: dict[int, bytes] = {}  # bytes read past a response, per socket (pipelining)


def one_response(sock: socket.socket) -> bytes:
    """One whole response on a kept-alive connection."""
    data = _LEFT.pop(sock.fileno(), b"")
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[
            1
        ]
    )
    while len(body) < length:
        body += sock.recv(65536)
    _LEFT[sock.fileno()] = body[length:]
    return head + b"\r\n\r\n" + body[:length]


def test_an_oversized_header_is_cut_off_while_it_arrives(serve) -> None:  # type: ignore[no-untyped-def]
    port = serve(max_header_bytes=16 * 1024, linger_s=WAIT_S)
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        sent = 0
        # 8 MB, never finished: the server must not wait for the end. It reads on after
        # its answer (a staged close), so the client stops when the answer is there.
        for _ in range(128):
            sock.sendall(b"a" * 65536)
            sent += 65536
            if select.select([sock], [], [], 0.1)[0]:
                break
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert b'"code":"headers_too_large"' in answer
    assert sent < 8 * 2**20  # refused long before the end


def test_a_finished_large_head_and_too_many_headers_get_431(serve) -> None:  # type: ignore[no-untyped-def]
    port = serve(max_header_bytes=16 * 1024, max_headers=20)
    with connect(port) as sock:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
        )
        assert read_answer(sock).startswith(b"HTTP/1.1 431")
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(30))
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + many + b"\r\n")
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 431") and b"too_many_headers" in answer
    with connect(port) as sock:  # within the limits: answered
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Ok: " + b"a" * 8000 + b"\r\n\r\n"
        )
        assert one_response(sock).startswith(b"HTTP/1.1 200")


def test_a_head_that_trickles_in_gets_408_and_the_connection_closes(serve) -> None:  # type: ignore[no-untyped-def]
    port = serve(header_timeout_s=1.0)
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        answer = b""
        for _ in range(int(WAIT_S / 0.2)):  # one byte every 0.2 s: never a whole head
            try:
                sock.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                break
            sock.settimeout(0.2)
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                break
            answer += chunk
        sock.settimeout(WAIT_S)
        answer += read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]


def test_an_answered_client_that_goes_on_sending_is_read_not_reset(serve) -> None:  # type: ignore[no-untyped-def]
    """After an error answer the server half-closes and reads what the client still sends
    (a staged close): closing with unread bytes makes the kernel reset the connection,
    which can discard an answer not yet on the wire (the trickling client above lost its
    408 that way under load)."""
    port = serve(header_timeout_s=0.5, linger_s=WAIT_S)
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        assert read_answer(sock).startswith(b"HTTP/1.1 408")  # the answer, then its end
        for _ in range(10):  # still writing: each write is read, none is refused
            sock.sendall(b"X" * 1024)
            time.sleep(0.05)


def test_an_idle_connection_is_closed(serve) -> None:  # type: ignore[no-untyped-def]
    port = serve(header_timeout_s=1.0, keep_alive_s=1.0)
    with connect(port) as sock:  # never sends a byte
        assert read_answer(sock) == b""  # closed by the server, nothing said
    with connect(port) as sock:  # one request, then idle on keep-alive
        sock.sendall(GET)
        assert one_response(sock).startswith(b"HTTP/1.1 200")
        assert read_answer(sock) == b""


def test_keep_alive_and_pipelining_still_work(serve) -> None:  # type: ignore[no-untyped-def]
    port = serve(header_timeout_s=1.0, keep_alive_s=5.0)
    with connect(port) as sock:
        for _ in range(3):
            sock.sendall(GET)
            assert one_response(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(GET * 3)  # pipelined
        for _ in range(3):
            assert one_response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(1.5)  # longer than the head timeout, idle between requests: fine
        sock.sendall(GET)
        assert one_response(sock).startswith(b"HTTP/1.1 200")


def test_connections_per_client_address_are_limited(serve) -> None:  # type: ignore[no-untyped-def]
    port = serve(max_connections_per_client=3)
    held = [connect(port) for _ in range(3)]
    try:
        for sock in held:
            sock.sendall(GET)
            assert one_response(sock).startswith(b"HTTP/1.1 200")
        with connect(port) as extra:
            answer = read_answer(extra)
        assert answer.startswith(b"HTTP/1.1 429"), answer[:100]
        assert b"too_many_connections" in answer and b"retry-after: 1" in answer.lower()
        held.pop().close()
        for _ in range(100):  # the server notices the close: a new one is let in
            with connect(port) as again:
                again.sendall(GET)
                reply = read_answer_or_response(again)
            if reply.startswith(b"HTTP/1.1 200"):
                break
            time.sleep(0.05)
        assert reply.startswith(b"HTTP/1.1 200")
    finally:
        for sock in held:
            sock.close()


def test_connections_in_all_are_limited(serve) -> None:  # type: ignore[no-untyped-def]
    port = serve(max_connections=2, max_connections_per_client=0)
    held = [connect(port) for _ in range(2)]
    try:
        for sock in held:
            sock.sendall(GET)
            assert one_response(sock).startswith(b"HTTP/1.1 200")
        with connect(port) as extra:
            assert read_answer(extra).startswith(b"HTTP/1.1 503")
    finally:
        for sock in held:
            sock.close()


def read_answer_or_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_limits_come_from_config_toml(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        "[server]\nmax_header_bytes = 8192\nmax_headers = 50\nheader_timeout_s = 5\n"
        "keep_alive_s = 2\nmax_connections = 10\nmax_connections_per_client = 0\n"
    )
    limits = ConnectionLimits.of(load_settings(tmp_path, environ={}).server)
    assert limits == ConnectionLimits(8192, 50, 5.0, 2.0, 10, 0)
    assert ConnectionLimits.of(load_settings(tmp_path / "none", environ={}).server) == (
        ConnectionLimits()
    )
    (tmp_path / "config.toml").write_text("[server]\nmax_header_bytes = 10\n")
    with pytest.raises(ConfigError, match=r"server\.max_header_bytes"):
        load_settings(tmp_path, environ={})
