"""No HTTP answer carries a known secret: every response (the hot endpoints, the
gateway's relayed upstream bodies, streams, the management API, errors) passes through
the settings' redactor on its way out (docs/security.md, "Secrets").

A body sent whole has its secrets replaced by `[REDACTED]` and its Content-Length
recomputed; a streamed body (server-sent events) is masked chunk by chunk, with `*`s of
the same length when a Content-Length was already promised. A secret cut in two by a
chunk boundary is not caught here; what streams (model deltas, tool results) is masked
at its source too (models/http.py, the toolset, the runtime).
"""

from __future__ import annotations

from pilothouse.server.asgi import ASGIApp, Message, Receive, Scope, Send
from pilothouse.tracing import Redactor

_LENGTH = b"content-length"


def redacting(app: ASGIApp, redactor: Redactor) -> ASGIApp:
    """`app` whose HTTP answers have every secret `redactor` knows masked."""

    async def entry(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started: Message | None = None
        promised = False  # a Content-Length went out with the start of a streamed body

        async def masked(message: Message) -> None:
            nonlocal started, promised
            kind = message["type"]
            if kind == "http.response.start":
                started = message
                return
            if kind != "http.response.body" or not redactor.has_secrets:
                if started is not None:
                    await send(started)
                    started = None
                await send(message)
                return
            body = message.get("body", b"")
            if started is not None:
                headers = [(k, redactor.scrub_bytes(v)) for k, v in started.get("headers", [])]
                if message.get("more_body", False):
                    promised = any(k.lower() == _LENGTH for k, _ in headers)
                else:  # the whole body: mask, then say its new length if it changed
                    masked_body = redactor.scrub_bytes(body)
                    if masked_body != body:
                        body = masked_body
                        headers = [(k, v) for k, v in headers if k.lower() != _LENGTH]
                        headers.append((_LENGTH, str(len(body)).encode()))
                    await send({**started, "headers": headers})
                    started = None
                    await send({**message, "body": body})
                    return
                await send({**started, "headers": headers})
                started = None
            await send({**message, "body": redactor.scrub_bytes(body, same_length=promised)})

        await app(scope, receive, masked)

    return entry
