"""The OpenAI Chat Completions wire format, server side: reading a request body into
neutral types, and writing answers back as `chat.completion` JSON or
`chat.completion.chunk` server-sent events.

Validation is strict on what Pilothouse reads (types of known fields, roles, tool
calls paired with results) and cheap (no schema library on the hot path). Every
problem is an `HTTPError(400)` naming the parameter, as OpenAI's API does.

The request side is in openai_request.py, the answer side in openai_answers.py; both
are re-exported here.
"""

from pilothouse.server.openai_answers import (
    ChunkWriter,
    completion,
    completion_id,
    finish_reason,
    tool_call_dict,
    usage_dict,
)
from pilothouse.server.openai_request import (
    EXTENSION,
    ROLES,
    bad,
    parse_body,
    to_messages,
    to_model_request,
    wants_usage,
)

__all__ = [
    "EXTENSION",
    "ROLES",
    "ChunkWriter",
    "bad",
    "completion",
    "completion_id",
    "finish_reason",
    "parse_body",
    "to_messages",
    "to_model_request",
    "tool_call_dict",
    "usage_dict",
    "wants_usage",
]
