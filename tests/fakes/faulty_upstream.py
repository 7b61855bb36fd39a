"""A fake OpenAI-compatible upstream whose failure mode is switched at run time, for
the fault-injection suite (tests/failover/) and the failover benchmark
(benchmarks/failover/).

Each mode is a way a real upstream lets its caller down, in JSON and in SSE streams:

| mode | what the upstream does |
|---|---|
| `ok` | answers normally |
| `500`, `503`, `401` | that status with OpenAI's error body |
| `400` | that status too: the client's mistake, not a failure of the upstream |
| `429` | 429 with `Retry-After: retry_after` |
| `slow_headers` | waits `delay_s` before its headers, then answers normally |
| `cut` | drops the connection before any content (JSON: half a body; stream: after the
  role chunk) |
| `stall` | goes silent before any content (JSON: after half a body; stream: after the
  role chunk) |
| `malformed` | JSON: a body that is not JSON; stream: an event that is not JSON |
| `empty_200` | 200 with an empty body (no events at all for a stream) |
| `error_200` | 200 carrying an OpenAI error object (the body, or the first event) |
| `blank` | a well-formed answer with only whitespace in it |
| `cut_after_text` | stream: some text, then drops the connection |
| `stall_after_text` | stream: some text, then goes silent |

"Refused" (nothing listening) is `pilothouse.testing.loopback.closed_port()`.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

FAILS_BEFORE_TEXT = (
    "500",
    "503",
    "429",
    "401",
    "slow_headers",
    "cut",
    "stall",
    "malformed",
    "empty_200",
    "error_200",
    "blank",
)
"""Modes that let the caller down before any text of the answer was sent."""
FAILS_AFTER_TEXT = ("cut_after_text", "stall_after_text")
"""Modes that let a stream down after its first text (a JSON answer comes whole)."""
MODES = ("ok", *FAILS_BEFORE_TEXT, *FAILS_AFTER_TEXT)

Send = Any
Receive = Any


class Dropped(Exception):
    """Raised inside the app to make the server drop the connection."""


class FaultyUpstream:
    """An ASGI app for `POST .../chat/completions`; switch `mode` at any time."""

    def __init__(
        self,
        mode: str = "ok",
        *,
        text: str = "The capital of France is Paris.",
        retry_after: str = "1",
        delay_s: float = 2.0,
        stall_s: float = 30.0,
        name: str = "upstream",
    ) -> None:
        self.mode = mode
        self.text = text
        self.retry_after = retry_after
        self.delay_s = delay_s
        self.stall_s = stall_s
        self.name = name
        self.requests: list[dict[str, Any]] = []

    # --- ASGI ------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        payload: dict[str, Any] = json.loads(body) if body else {}
        self.requests.append(payload)
        mode = self.mode
        stream = payload.get("stream") is True
        if mode in ("400", "500", "503", "401", "429"):
            await self._error(send, int(mode))
            return
        if mode == "slow_headers":
            await asyncio.sleep(self.delay_s)
        if stream:
            await self._stream(send, mode, payload)
        else:
            await self._json(send, mode, payload)

    async def _start(self, send: Send, status: int, kind: bytes, extra: list[Any]) -> None:
        headers = [(b"content-type", kind), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})

    async def _body(self, send: Send, data: bytes, more: bool = False) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": more})

    async def _error(self, send: Send, status: int) -> None:
        kinds = {429: "requests", 401: "invalid_request_error", 400: "invalid_request_error"}
        body = {
            "error": {
                "message": f"{self.name}: simulated HTTP {status}",
                "type": kinds.get(status, "server_error"),
                "param": None,
                "code": "rate_limit_exceeded" if status == 429 else None,
            }
        }
        extra = [(b"retry-after", self.retry_after.encode())] if status == 429 else []
        await self._start(send, status, b"application/json", extra)
        await self._body(send, json.dumps(body).encode())

    # --- JSON ------------------------------------------------------------------------

    def completion(self, model: str, text: str) -> bytes:
        message = {"role": "assistant", "content": text, "refusal": None}
        body = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16},
        }
        return json.dumps(body).encode()

    async def _json(self, send: Send, mode: str, payload: dict[str, Any]) -> None:
        model = str(payload.get("model") or "")
        kind = b"application/json"
        whole = self.completion(model, "   " if mode == "blank" else self.text)
        if mode in ("ok", "slow_headers", "blank", "cut_after_text", "stall_after_text"):
            await self._start(send, 200, kind, [])
            await self._body(send, whole)
        elif mode in ("cut", "stall"):
            await self._start(send, 200, kind, [])
            await self._body(send, whole[: len(whole) // 2], more=True)
            if mode == "cut":
                raise Dropped("the fake drops the connection on purpose")
            await asyncio.sleep(self.stall_s)
            await self._body(send, whole[len(whole) // 2 :])
        elif mode == "malformed":
            await self._start(send, 200, kind, [])
            await self._body(send, b'{"id": "chatcmpl-x", "choices": [')
        elif mode == "empty_200":
            await self._start(send, 200, kind, [])
            await self._body(send, b"")
        elif mode == "error_200":
            error = {"error": {"message": f"{self.name}: overloaded", "type": "server_error"}}
            await self._start(send, 200, kind, [])
            await self._body(send, json.dumps(error).encode())
        else:
            raise ValueError(f"unknown mode {mode!r}")

    # --- streams ---------------------------------------------------------------------

    def chunk(self, model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
        data = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    async def _stream(self, send: Send, mode: str, payload: dict[str, Any]) -> None:
        model = str(payload.get("model") or "")
        await self._start(send, 200, b"text/event-stream", [(b"cache-control", b"no-cache")])
        if mode == "empty_200":
            await self._body(send, b"")
            return
        if mode == "malformed":
            await self._body(send, b"data: {this is not json\n\n")
            await self._body(send, b"data: [DONE]\n\n")
            return
        if mode == "error_200":
            error = {"error": {"message": f"{self.name}: overloaded", "type": "server_error"}}
            await self._body(send, b"data: " + json.dumps(error).encode() + b"\n\n", more=True)
            await self._body(send, b"data: [DONE]\n\n")
            return
        await self._body(send, self.chunk(model, {"role": "assistant", "content": ""}), more=True)
        if mode in ("cut", "stall"):
            await self._fail(send, mode == "cut")
            return
        words = ["  ", " \n"] if mode == "blank" else _pieces(self.text)
        for index, piece in enumerate(words):
            await self._body(send, self.chunk(model, {"content": piece}), more=True)
            if index == 0 and mode in ("cut_after_text", "stall_after_text"):
                await self._fail(send, mode == "cut_after_text")
                return
        await self._body(send, self.chunk(model, {}, "stop"), more=True)
        await self._body(send, b"data: [DONE]\n\n")

    async def _fail(self, send: Send, cut: bool) -> None:
        if cut:
            raise Dropped("the fake drops the connection on purpose")
        await asyncio.sleep(self.stall_s)
        await self._body(send, b"")


def _pieces(text: str) -> list[str]:
    size = max(1, len(text) // 3)
    return [text[i : i + size] for i in range(0, len(text), size)]
