"""Wire-format fakes: the neutral vocabulary a conformance suite scripts any vendor's
fake with (`Reply`, `Echo`, `Fail`, `Malformed`, `CutStream`, `MidStreamError`, `Stall`;
`Facts`, what a request meant), and `FakeVendor`, the shared half of every fake (a
script queue, recorded requests and headers, key checks).

A fake for a vendor subclasses `FakeVendor`, serves its documented routes (a Starlette
`app`), parses each request into `Facts` and renders each script step in the vendor's
wire format, including its error bodies and streaming. Serve it with
`pilothouse.testing.loopback.serve_app`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, TypeAlias

from starlette.requests import Request
from starlette.responses import Response


@dataclass(frozen=True)
class Call:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """A normal answer. `finish` is neutral: stop, length, tool_calls, content_filter."""

    text: str = ""
    tool_calls: tuple[Call, ...] = ()
    finish: str | None = None  # None: "tool_calls" when there are calls, else "stop"
    usage: tuple[int, int, int] = (11, 7, 3)  # input, output, cached
    chunks: int = 3  # how many stream events the text is cut into


@dataclass(frozen=True)
class Echo:
    """Answer with a JSON text of what the fake understood from the request (see
    `Facts`), so tests can check the adapter's mapping without knowing the wire format."""


@dataclass(frozen=True)
class Fail:
    """An HTTP error in the vendor's documented error body."""

    status: int
    message: str = "simulated failure"
    retry_after: str | None = None


@dataclass(frozen=True)
class Malformed:
    """200 with a body that is not the vendor's format (invalid JSON / stream data)."""


@dataclass(frozen=True)
class CutStream:
    """Stream `text`, then drop the connection (abrupt) or end the body cleanly without
    the vendor's end-of-stream marker (abrupt=False)."""

    text: str = "partial answer"
    abrupt: bool = True


@dataclass(frozen=True)
class MidStreamError:
    """Stream `text`, then the vendor's documented in-stream error event."""

    text: str = "partial answer"
    message: str = "Overloaded"


@dataclass(frozen=True)
class Stall:
    """Send `text` (maybe nothing), then go silent for `seconds`."""

    text: str = ""
    seconds: float = 30.0


Step: TypeAlias = Reply | Echo | Fail | Malformed | CutStream | MidStreamError | Stall


@dataclass
class Facts:
    """What a request meant, in neutral terms. Fakes fill this from the wire format."""

    system: str = ""
    # [role, text] for each non-system message, in order; role is user/assistant/tool
    messages: list[list[str]] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    # the parameter names of each tool, in the order of `tools`
    tool_params: list[list[str]] = field(default_factory=list)
    tool_choice: str | None = None  # auto, none, required, or a tool name
    # [tool name, arguments as compact sorted JSON] for each tool call in the history
    assistant_tool_calls: list[list[str]] = field(default_factory=list)
    # [tool call id (or name where the vendor has no ids), content] per tool result
    tool_results: list[list[str]] = field(default_factory=list)
    images: int = 0
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    schema_properties: list[str] = field(default_factory=list)  # of the output schema
    model: str = ""
    stream: bool = False


class FakeVendor:
    """Plays back `script` (one step per request; `Reply("ok")` when empty)."""

    app: Any
    """The ASGI app serving the vendor's routes (a subclass builds it)."""

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
