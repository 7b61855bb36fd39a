"""Loopback ports for tests: one where nothing listens (`closed_port`) and one free for
a server a test starts itself (`free_port`)."""

from __future__ import annotations

import atexit
import functools
import socket


def closed_port() -> int:
    """A loopback port where nothing listens while this process runs: a socket of this
    process holds it bound and never listens, so a connection is refused, and no other
    socket (another xdist worker's, a server started on port 0) can take it meanwhile.
    The same port every call."""
    return int(_refusing_socket().getsockname()[1])


@functools.cache
def _refusing_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # no SO_REUSEADDR: nobody else may bind it
    atexit.register(sock.close)
    return sock


def free_port() -> int:
    """A loopback port free at the moment, for a server a test starts as another
    process with `--port` (it may be taken before then: prefer port 0 where the server
    can report the port it got). Not for "nothing listens here": `closed_port`."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
