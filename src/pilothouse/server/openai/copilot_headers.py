"""The copilot extension where clients that keep only standard fields still find it.

LangChain's `ChatOpenAI` drops unknown fields of a completion (the `pilothouse`
extension object among them) and keeps, in `response_metadata`, the completion `id`,
`model_name`, `finish_reason`, token usage and, with `include_response_headers=True`,
the response headers. So a copilot's answer also carries:

- its run id in the completion id: `chatcmpl-<run id>` (JSON and every chunk);
- `x-pilothouse-run-id`, `x-pilothouse-conversation-id`, `x-pilothouse-copilot`
  headers (JSON answers and streams: a stream's headers go out with its first chunk,
  once the run has started);
- on JSON answers also `x-pilothouse-status`, `x-pilothouse-model` and
  `x-pilothouse-citations`: the answer's citations as compact ASCII JSON (`number`,
  `source`, `title`, `page`, `headings`, `chunk_id`; no snippet), at most 8 KiB:
  citations past that are left out and `x-pilothouse-citations-truncated: true` says
  so;
- on streams `x-pilothouse-passages`: the passages retrieved for the question, in the
  same form, numbered as the model saw them, so the `[n]` in the streamed text can be
  resolved (which of them the answer cites is known only at its end, after the
  headers went out).

The full extension (snippets, tool calls, pending approvals) stays in the body, and a
run's whole record is at `GET /api/runs/{run_id}`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from pilothouse.copilot.events import Answer, Citation

PREFIX = "x-pilothouse-"
MAX_CITATIONS_BYTES = 8192

Headers = list[tuple[bytes, bytes]]


def run_completion_id(run_id: str) -> str:
    """The completion id of a copilot's answer: its run id, OpenAI-style."""
    return f"chatcmpl-{run_id}"


def _header(name: str, value: str) -> tuple[bytes, bytes]:
    return (PREFIX + name).encode(), value.encode("ascii", "replace")


def run_headers(copilot: str, run_id: str, conversation_id: str) -> Headers:
    """What is known once a run has started."""
    return [
        _header("run-id", run_id),
        _header("conversation-id", conversation_id),
        _header("copilot", json.dumps(copilot)[1:-1]),  # ASCII, escaped like JSON
    ]


def answer_headers(answer: Answer, copilot: str) -> Headers:
    """What is known once the run has answered."""
    headers = run_headers(copilot, answer.run_id, answer.conversation_id)
    headers.append(_header("status", answer.status))
    if answer.model:
        headers.append(_header("model", answer.model))
    return headers + citation_headers("citations", answer.citations)


def citation_headers(name: str, citations: Iterable[Citation]) -> Headers:
    """`x-pilothouse-<name>`: citations as compact ASCII JSON, at most 8 KiB."""
    items: list[str] = []
    size = 2
    headers: Headers = []
    for citation in citations:
        item = json.dumps(
            {
                "number": citation.number,
                "source": citation.source,
                "title": citation.title,
                "page": citation.page,
                "headings": list(citation.headings),
                "chunk_id": citation.chunk_id,
            },
            separators=(",", ":"),
        )
        if size + len(item) + 1 > MAX_CITATIONS_BYTES:
            headers.append(_header(f"{name}-truncated", "true"))
            break
        items.append(item)
        size += len(item) + 1
    return [_header(name, "[" + ",".join(items) + "]"), *headers]
