"""The shared half of every vendor fake: a script queue, recorded requests, key checks.

A vendor fake subclasses `FakeVendor` and implements parsing its wire format into
`Facts` and rendering each script step in its wire format.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tests.fakes.script import Echo, Facts, Reply, Step


class FakeVendor:
    """Plays back `script` (one step per request; `Reply("ok")` when empty)."""

    def __init__(self, key: str = "test-key") -> None:
        self.key = key
        self.script: list[Step] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []

    def push(self, *steps: Step) -> None:
        self.script.extend(steps)

    def next_step(self, facts: Facts) -> Step:
        step = self.script.pop(0) if self.script else Reply("ok")
        if isinstance(step, Echo):
            return Reply(json.dumps(asdict(facts), sort_keys=True), chunks=4)
        return step

    async def record(self, request: Request) -> dict[str, Any]:
        body = await request.body()
        payload: dict[str, Any] = json.loads(body) if body else {}
        self.requests.append(payload)
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        self.paths.append(
            str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
        )
        return payload

    def split_text(self, text: str, chunks: int) -> list[str]:
        if not text:
            return []
        size = max(1, -(-len(text) // max(chunks, 1)))
        return [text[i : i + size] for i in range(0, len(text), size)]

    def json_response(
        self, data: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        return Response(
            json.dumps(data), status_code=status, headers=headers, media_type="application/json"
        )


def compact(arguments: Any) -> str:
    return json.dumps(arguments, sort_keys=True, separators=(",", ":"))
