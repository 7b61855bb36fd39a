"""Upstreams that refuse every request and echo its credentials in the error body, in
each vendor's documented error shape: the worst case for secret hygiene, which some
real services and proxies do (repeating the Authorization header, or "invalid API key
sk-..."). Used by the secret scanner (tests/security).

One app serves them all, by path prefix:

- `/openai/v1/...`: Chat Completions and Embeddings. `{"error": {"message", "type",
  "code"}}`; a streamed request gets a 200 stream whose first event is an error.
- `/anthropic/v1/messages`: `{"type": "error", "error": {"type", "message"}}`; a
  streamed request gets `event: error`.
- `/gemini/v1beta/models/M:generateContent` (and `:streamGenerateContent`,
  `:embedContent`): `{"error": {"code", "message", "status"}}`.
- `/jira/...` (any path): Jira's `{"errorMessages": [...], "errors": {}}`.

Statuses rotate through 401, 400, 429, 500 and 503 per vendor, so every mapping of an
HTTP error (authentication, bad request, rate limit, unavailable) is exercised. Each
request's credentials are recorded in `seen`, so a test can prove they were sent.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

STATUSES = (401, 400, 429, 500, 503)
CREDENTIAL_HEADERS = ("authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie")


class EchoingUpstreams:
    def __init__(self) -> None:
        self.seen: dict[str, list[str]] = defaultdict(list)
        """vendor -> every credential value received."""
        self._statuses = {v: itertools.cycle(STATUSES) for v in ("openai", "anthropic", "gemini")}
        self.app = Starlette(
            routes=[
                Route("/openai/v1/{rest:path}", self.openai, methods=["POST"]),
                Route("/anthropic/v1/messages", self.anthropic, methods=["POST"]),
                Route("/gemini/v1beta/models/{rest:path}", self.gemini, methods=["POST"]),
                Route("/jira/{rest:path}", self.jira, methods=["GET", "POST", "PUT"]),
            ]
        )

    def _echo(self, vendor: str, request: Request) -> str:
        found = {k: v for k, v in request.headers.items() if k.lower() in CREDENTIAL_HEADERS}
        key = request.query_params.get("key")
        if key:
            found["key"] = key
        self.seen[vendor].extend(found.values())
        return f"request refused; you sent {json.dumps(found)} to {request.url}"

    async def _wants_stream(self, request: Request) -> bool:
        if "stream" in request.url.path.lower() or request.query_params.get("alt") == "sse":
            return True
        try:
            body = await request.json()
        except ValueError:
            return False
        return isinstance(body, dict) and body.get("stream") is True

    async def openai(self, request: Request) -> Response:
        echo = self._echo("openai", request)
        error = {"message": echo, "type": "invalid_request_error", "code": "invalid_api_key"}
        if await self._wants_stream(request):
            return _sse([f"data: {json.dumps({'error': error})}\n\n"])
        return JSONResponse({"error": error}, status_code=next(self._statuses["openai"]))

    async def anthropic(self, request: Request) -> Response:
        echo = self._echo("anthropic", request)
        error = {"type": "error", "error": {"type": "authentication_error", "message": echo}}
        if await self._wants_stream(request):
            return _sse([f"event: error\ndata: {json.dumps(error)}\n\n"])
        return JSONResponse(error, status_code=next(self._statuses["anthropic"]))

    async def gemini(self, request: Request) -> Response:
        echo = self._echo("gemini", request)
        status = next(self._statuses["gemini"])
        body = {"error": {"code": status, "message": echo, "status": "UNAUTHENTICATED"}}
        return JSONResponse(body, status_code=status)

    async def jira(self, request: Request) -> Response:
        echo = self._echo("jira", request)
        return JSONResponse({"errorMessages": [echo], "errors": {}}, status_code=401)


def _sse(events: list[str]) -> Response:
    async def body() -> Any:
        for event in events:
            yield event.encode()

    return StreamingResponse(body(), media_type="text/event-stream")
