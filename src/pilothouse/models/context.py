"""Whether a request fits a model's context window (its profile's `context_window`),
and trimming a conversation's oldest turns so that it does.

No tokenizer is at hand for every model, so sizes are estimated from UTF-8 bytes:

- `estimate_tokens`: about 4 bytes a token (English prose and code with today's BPE
  vocabularies), plus a few tokens per message and per image. Used to trim: dropping an
  old turn too many costs little; the conversation memory keeps a summary of them.
- `least_tokens`: 6 bytes a token, which real text does not go beyond. Used to refuse a
  request before it is sent, so a request that would fit is never refused.

A profile without a `context_window` (the model's window is unknown) is never trimmed
or refused.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import replace

from pilothouse.errors import ContextTooLongError
from pilothouse.models.profiles import ModelProfile
from pilothouse.types import (
    ImagePart,
    Message,
    ModelRequest,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)

log = logging.getLogger(__name__)

BYTES_PER_TOKEN = 4
MOST_BYTES_PER_TOKEN = 6
MESSAGE_TOKENS = 4
IMAGE_TOKENS = 1000


def _message_bytes(message: Message) -> int:
    size = 0
    for part in message.parts:
        if isinstance(part, TextPart):
            size += len(part.text.encode("utf-8"))
        elif isinstance(part, ToolCallPart):
            size += len(part.name) + len(part.arguments_json.encode("utf-8"))
        elif isinstance(part, ToolResultPart):
            size += len(part.content.encode("utf-8"))
    return size


def _request_bytes(request: ModelRequest) -> int:
    size = sum(_message_bytes(m) for m in request.messages)
    for tool in request.tools:
        described = f"{tool.name} {tool.description} {json.dumps(tool.parameters)}"
        size += len(described.encode("utf-8"))
    if request.output_schema is not None:
        size += len(json.dumps(request.output_schema.schema).encode("utf-8"))
    return size


def estimate_tokens(request: ModelRequest) -> int:
    """About how many tokens the request's input takes."""
    images = sum(isinstance(p, ImagePart) for m in request.messages for p in m.parts)
    return (
        math.ceil(_request_bytes(request) / BYTES_PER_TOKEN)
        + MESSAGE_TOKENS * len(request.messages)
        + IMAGE_TOKENS * images
    )


def least_tokens(request: ModelRequest) -> int:
    """Fewer tokens than the request's input can take."""
    return _request_bytes(request) // MOST_BYTES_PER_TOKEN


def _output_reserve(request: ModelRequest, profile: ModelProfile) -> int:
    return request.max_output_tokens or profile.default_max_tokens or 0


def check_fits(request: ModelRequest, profile: ModelProfile, model_id: str) -> None:
    """Raise `ContextTooLongError` (a fallback chain moves on) when the request cannot
    fit the model's window, before anything is sent."""
    window = profile.context_window
    if window is None:
        return
    reserve = request.max_output_tokens or 0
    needed = least_tokens(request) + reserve
    if needed <= window:
        return
    asked = f" plus the {reserve} output tokens asked for" if reserve else ""
    raise ContextTooLongError(
        f"the request needs at least {needed - reserve} tokens{asked}, more than the "
        f"model's context window of {window} tokens (its profile's context_window); send "
        "less (shorter instructions, fewer or smaller passages or tool results), or use a "
        "model with a larger window",
        model=model_id,
    )


def _droppable(messages: tuple[Message, ...]) -> list[list[int]]:
    """The conversation turns that may be dropped, oldest first, as lists of message
    indexes: what lies between the leading system messages and the last user message,
    cut into turns that each start with a user message (so an answer never outlives
    its question, nor a tool call its result)."""
    start = 0
    while start < len(messages) and messages[start].role == "system":
        start += 1
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    units: list[list[int]] = []
    for index in range(start, last_user):
        if not units or messages[index].role == "user":
            units.append([index])
        else:
            units[-1].append(index)
    return units


def fit_history(request: ModelRequest, profile: ModelProfile) -> ModelRequest:
    """`request` without its oldest conversation turns, as many as needed for its
    estimated size plus the output it asks for to fit the window. The system messages,
    the last user message and what follows it are always kept."""
    window = profile.context_window
    if window is None:
        return request
    budget = window - _output_reserve(request, profile)
    excess = estimate_tokens(request) - budget
    if excess <= 0:
        return request
    messages = request.messages
    dropped: set[int] = set()
    for unit in _droppable(messages):
        if excess <= 0:
            break
        dropped.update(unit)
        excess -= sum(
            math.ceil(_message_bytes(messages[i]) / BYTES_PER_TOKEN) + MESSAGE_TOKENS for i in unit
        )
    if not dropped:
        return request
    log.info(
        "left out the %d oldest of %d messages to fit a context window of %d tokens",
        len(dropped),
        len(messages),
        window,
    )
    kept = tuple(m for i, m in enumerate(messages) if i not in dropped)
    return replace(request, messages=kept)
