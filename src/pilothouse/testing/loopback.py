"""Serve an ASGI app on 127.0.0.1 in a background thread: wire-format fakes in tests,
and in a plugin's own tests (ports where nothing listens, or free for a server a test
starts itself: `pilothouse.testing.ports`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import uvicorn


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve `app` on a free loopback port; yields the base URL `http://127.0.0.1:PORT`.
    On exit, requests still in flight are cancelled rather than waited for: a fake
    that stalls on purpose (a timeout test) would otherwise hold the test's end for
    the rest of its stall."""
    with running_server(app, in_flight_s=0) as (url, _):
        yield url


@contextmanager
def running_server(
    app: Any,
    *,
    lifespan: Literal["on", "off"] = "off",
    start_timeout_s: float = 10,
    in_flight_s: int | None = None,
) -> Iterator[tuple[str, uvicorn.Server]]:
    """`serve_app` with the app's lifespan when asked (`lifespan="on"`), yielding the
    base URL and the uvicorn server (its `server_state.connections`, ...). On exit,
    requests in flight get `in_flight_s` seconds to finish (None: as long as they take,
    up to the stop timeout) and are then cancelled."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan=lifespan,
        timeout_graceful_shutdown=in_flight_s,
    )
    with run_in_thread(
        uvicorn.Server(config),
        start_timeout_s=start_timeout_s,
        stop_timeout_s=30 if lifespan == "on" else 5,
    ) as running:
        yield running


@contextmanager
def run_in_thread(
    server: uvicorn.Server, *, start_timeout_s: float = 10, stop_timeout_s: float = 5
) -> Iterator[tuple[str, uvicorn.Server]]:
    """Run a uvicorn `server` configured for 127.0.0.1 (port 0: a free one) in a thread
    until it has started; yields its base URL and the server, and stops it on exit."""
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(timeout=stop_timeout_s)
