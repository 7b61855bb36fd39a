"""HTTP limits below the ASGI app: what a client can make the server hold before any
request reaches routing, keys or body limits.

uvicorn with httptools, on its own (measured with real sockets, see
tests/server/test_connections.py): accepts a header of any size (httptools buffers an
unfinished one whole: 8 MB went in), any number of header fields, a request head that
trickles in forever, a connection that never sends a byte, and any number of
connections from one address. Its keep-alive timeout only starts after a response.
`GuardedProtocol` is uvicorn's httptools protocol with those holes closed:

- **head size**: the request line and headers may take `max_header_bytes` (431, then
  the connection is closed); counted as bytes arrive, so an unfinished head is cut off
  at the limit (plus at most one read);
- **header count**: at most `max_headers` fields (431);
- **head time**: a new connection, and each request on a kept-alive one from its first
  byte, must deliver its whole head within `header_timeout_s` (408 if some of it came;
  a connection that sent nothing is just closed): slow-header (slowloris) and idle
  connections do not stay;
- **closing after an error answer** (431, 408, 429, 503): staged, as RFC 9112 9.6 asks:
  the server half-closes, reads and drops what the client still sends, and closes when
  the client does or after `linger_s`. Closing at once with unread bytes makes the
  kernel reset the connection, and a reset can discard the answer before it is sent
  (a client still writing its head then sees "connection reset", not the 408);
- **keep-alive**: an idle kept-alive connection is closed after `keep_alive_s`;
- **connections**: at most `max_connections` open in all (503) and
  `max_connections_per_client` from one client address (429); a refused connection is
  answered and closed at once, before anything is read.

Bodies (size, time) are limited per request by the app (ops.py). Everything here is
per process. `uvicorn_config` builds the uvicorn configuration with the protocol;
`pilothouse serve` and the tests use it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from pilothouse.config import ServerSettings
from pilothouse.server.asgi import HTTPError


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Per-connection HTTP limits; the defaults are those of config.toml's `[server]`."""

    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout_s: float = 10.0
    keep_alive_s: float = 5.0
    max_connections: int = 1000
    """0: no limit."""
    max_connections_per_client: int = 100
    """0: no limit. Behind a proxy every client has the proxy's address: raise it."""
    linger_s: float = 2.0
    """How long a connection answered with an error is read after its answer (not in
    config.toml: a client needs a moment, an attacker gets no more than this)."""

    @classmethod
    def of(cls, server: ServerSettings) -> ConnectionLimits:
        return cls(
            max_header_bytes=server.max_header_bytes,
            max_headers=server.max_headers,
            header_timeout_s=server.header_timeout_s,
            keep_alive_s=server.keep_alive_s,
            max_connections=server.max_connections,
            max_connections_per_client=server.max_connections_per_client,
        )


@dataclass
class ConnectionBook:
    """The open connections of one server, in all and per client address."""

    limits: ConnectionLimits
    total: int = 0
    by_client: dict[str, int] = field(default_factory=dict)

    def admit(self, client: str) -> HTTPError | None:
        """Count a new connection in, or say why it is refused (and count nothing)."""
        limits = self.limits
        if limits.max_connections and self.total >= limits.max_connections:
            return HTTPError(
                503,
                f"the server has {self.total} connections open, its limit; retry later",
                code="too_many_connections",
                headers=[(b"retry-after", b"1")],
            )
        mine = self.by_client.get(client, 0)
        if limits.max_connections_per_client and mine >= limits.max_connections_per_client:
            return HTTPError(
                429,
                f"{mine} connections are open from your address, the limit of this server; "
                "reuse them (keep-alive) or close some",
                code="too_many_connections",
                headers=[(b"retry-after", b"1")],
            )
        self.total += 1
        self.by_client[client] = mine + 1
        return None

    def leave(self, client: str) -> None:
        self.total -= 1
        left = self.by_client.get(client, 1) - 1
        if left > 0:
            self.by_client[client] = left
        else:
            self.by_client.pop(client, None)


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that is refused."""


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits above. Bound to one server's
    `ConnectionBook` by `protocol_class`."""

    book: ClassVar[ConnectionBook]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = self.book.limits
        self._address: str | None = None  # set once admitted
        self._in_head = True
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refusal: HTTPError | None = None
        self._done = False
        self._linger_timer: asyncio.TimerHandle | None = None

    # --- the connection ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = self.client[0] if self.client else "unknown"
        refusal = self.book.admit(address)
        if refusal is not None:
            self._answer(refusal)
            return
        self._address = address
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._done = True
        self._disarm_head_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        if self._address is not None:
            self.book.leave(self._address)
            self._address = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._done:
            return
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._answer(self._refusal)
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        if self._in_head:
            if self._head_bytes > self.limits.max_header_bytes:
                self._answer(_head_too_large(self.limits))
            elif self._head_timer is None and self._head_bytes:
                self._arm_head_timer()  # part of a head came: the rest has a deadline

    # --- parser callbacks --------------------------------------------------------------

    def on_headers_complete(self) -> None:
        if self._head_timer is not None:
            self._disarm_head_timer()
        if self._head_bytes > self.limits.max_header_bytes:  # the read held more: measure
            size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
            if size > self.limits.max_header_bytes:  # a head that came whole in one read
                self._refusal = _head_too_large(self.limits)
                raise _Refused
        self._in_head = False
        self._head_bytes = 0
        if len(self.headers) > self.limits.max_headers:
            self._refusal = HTTPError(
                431,
                f"the request has {len(self.headers)} header fields; the limit is "
                f"{self.limits.max_headers}",
                code="too_many_headers",
                headers=[(b"connection", b"close")],
            )
            raise _Refused
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # what comes next is the next request's head
        self._head_bytes = 0

    # --- helpers -----------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_late)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if self._done or not self._in_head:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm_head_timer()  # a pipelined head behind a long answer: wait for it
            return
        if self._head_bytes == 0:  # idle: nothing to answer
            self._done = True
            self.transport.close()
            return
        self._answer(
            HTTPError(
                408,
                f"the request line and headers did not arrive within "
                f"{self.limits.header_timeout_s:g} s",
                code="request_timeout",
            )
        )

    def _answer(self, error: HTTPError) -> None:
        """Answer with `error` (JSON, OpenAI-shaped) and close the connection."""
        self._done = True
        self._disarm_head_timer()
        body = error.body()
        head = [STATUS_LINE[error.status]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        for name, value in error.headers:
            if name != b"connection":
                head.extend([name, b": ", value, b"\r\n"])
        head.append(
            b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % len(body)
        )
        if not self.transport.is_closing():
            self.transport.write(b"".join(head) + body)
            self._close_staged()

    def _close_staged(self) -> None:
        """Half-close after the answer; what the client still sends is dropped by
        `data_received`; its own close (uvicorn's `eof_received` lets asyncio close the
        transport) or `linger_s` ends the connection."""
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()  # the FIN goes after the answer
        self._linger_timer = self.loop.call_later(self.limits.linger_s, self.transport.close)


def _head_too_large(limits: ConnectionLimits) -> HTTPError:
    return HTTPError(
        431,
        f"the request line and headers are larger than {limits.max_header_bytes} bytes",
        code="headers_too_large",
    )


def protocol_class(limits: ConnectionLimits) -> type[GuardedProtocol]:
    """A `GuardedProtocol` class for one server, with its own connection book."""
    book = ConnectionBook(limits)
    return type("GuardedProtocol", (GuardedProtocol,), {"book": book})


def uvicorn_config(app: Any, *, limits: ConnectionLimits, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration of a Pilothouse server: the guarded httptools protocol
    and the keep-alive timeout of `limits`, plus uvicorn's own `options`."""
    return uvicorn.Config(
        app,
        http=protocol_class(limits),
        timeout_keep_alive=limits.keep_alive_s,  # type: ignore[arg-type]
        **options,
    )
