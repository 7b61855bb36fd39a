"""The rule of a usable answer (models/usable.py) applied to OpenAI's wire format, for a
caller that passes the upstream's bytes on unchanged (the gateway's fast path): the
answer is read with the same parser as the adapter's (response.py), so both paths
judge an answer alike.

- `check_completion`: a `chat.completion` body must be JSON, must not be an error
  object, must carry a choice with a message, and that message must be usable.
- `FirstContent`: reads a stream's events until its first content (which commits the
  stream); an error event, a chunk that is not JSON, or an end before any content
  raises the failure it is.
"""

from __future__ import annotations

from typing import Any

import orjson

from pilothouse.errors import EmptyAnswerError, MalformedResponseError, UnavailableError
from pilothouse.models.openai_chat.response import ChunkReader, parse_completion
from pilothouse.models.usable import answer_problem, is_content
from pilothouse.types import Message

_DONE = b"[DONE]"
_PLAIN_KEYS = {"role", "content", "refusal", "tool_calls", "function_call"}


def check_completion(body: bytes, *, model: str, url: str) -> None:
    """Raise the typed failure that `body` is, unless it is a usable `chat.completion`."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        shown = body[:80]
        raise MalformedResponseError(
            f"{url} answered with invalid JSON; body starts {shown!r}", model=model
        ) from None
    if not isinstance(data, dict):
        raise MalformedResponseError(f"{url} answered JSON that is not an object", model=model)
    if _text_of_first_choice(data, "message").strip() and "error" not in data:
        return  # text that is not blank: usable (the common case, decided cheaply)
    completion = parse_completion(data, model=model, url=url)
    problem = answer_problem(completion.message, completion.finish_reason)
    if problem is not None:
        raise EmptyAnswerError(f"{url} answered 200 with nothing usable: {problem}", model=model)


class FirstContent:
    """Judges a stream's first events. `feed` each SSE event (its `event:` name and
    `data:` text) until it returns True: the stream has content and may be committed."""

    def __init__(self, *, model: str, url: str) -> None:
        self.model = model
        self.url = url
        self._reader = ChunkReader(model=model, url=url)

    def feed(self, event: str, data: bytes) -> bool:
        data = data.strip()
        if not data:
            return False
        if data == _DONE:
            return self._ended("ended the stream with [DONE]")
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise MalformedResponseError(
                f"{self.url} sent a stream event that is not JSON: {data[:80]!r}",
                model=self.model,
            ) from None
        if event != "error" and isinstance(chunk, dict) and "error" not in chunk:
            plain = _plain_delta(chunk)  # the common cases, decided cheaply
            if plain is not None:
                return plain
        if any(is_content(e) for e in self._reader.read(chunk, event=event)):  # type: ignore[arg-type]
            return True
        if self._reader.finish is not None:
            return self._ended("finished its answer")
        return False

    def ended(self) -> bool:
        """The upstream closed the stream before content: True when that is still a
        usable answer (it finished, cut to nothing by the caller's output limit)."""
        if self._reader.finish is None:
            raise UnavailableError(
                f"{self.url} closed the stream before sending any content", model=self.model
            )
        return self._ended("closed the stream")

    def _ended(self, how: str) -> bool:
        finish = self._reader.finish
        if finish is not None and answer_problem(Message("assistant", ()), finish) is None:
            return True  # cut to nothing by the caller's max_tokens: theirs to have
        raise EmptyAnswerError(
            f"{self.url} {how} without any content: the answer is empty", model=self.model
        )


def _text_of_first_choice(data: dict[str, Any], key: str) -> str:
    """`choices[0][key].content` when it is a string, else ""."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    first = choices[0].get(key)
    content = first.get("content") if isinstance(first, dict) else None
    return content if isinstance(content, str) else ""


def _plain_delta(chunk: dict[str, Any]) -> bool | None:
    """For a chunk whose only choice carries nothing but text (and a role): whether
    that text is content. None for anything else (tool calls, a refusal, a finish
    reason, usage, several choices), which the full reader judges."""
    choices = chunk.get("choices")
    if not isinstance(choices, list) or len(choices) != 1 or "usage" in chunk:
        return None
    choice = choices[0]
    delta = choice.get("delta") if isinstance(choice, dict) else None
    if not isinstance(delta, dict) or choice.get("finish_reason"):
        return None
    content = delta.get("content")
    if not (content is None or isinstance(content, str)) or delta.keys() - _PLAIN_KEYS:
        return None
    if delta.get("refusal") or delta.get("tool_calls") or delta.get("function_call"):
        return None
    return bool(content and content.strip())
