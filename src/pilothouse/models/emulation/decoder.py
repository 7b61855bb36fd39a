"""Reading the envelope JSON back: the answer string is decoded incrementally, so a
plain answer still streams token by token; tool calls are emitted whole once their
JSON is complete, with ids that are stable for the same conversation and call."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pilothouse.errors import MalformedResponseError
from pilothouse.models.base import AdapterEvent
from pilothouse.types import FinishReason, TextDelta, ToolCallDelta

_PREFIX = re.compile(r'\s*\{\s*"(answer|tool_calls)"\s*:\s*')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def stable_call_id(seed: str, index: int, name: str, arguments: Any) -> str:
    """The same id for the same call in the same conversation, distinct per call."""
    text = f"{seed}:{index}:{name}:{json.dumps(arguments, sort_keys=True, ensure_ascii=False)}"
    return "call_" + hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass
class EnvelopeDecoder:
    """Reads the envelope JSON as it streams. `feed` returns the answer text that can
    be shown now (the `"answer"` string, decoded incrementally); `finish` parses the
    whole object and returns the rest (tool calls, a structured answer) and the finish
    reason. Text that does not start like the envelope (a model that ignored the
    schema) is passed through as a plain answer."""

    id_seed: str = ""
    structured_answer: bool = False
    raw: list[str] = field(default_factory=list)
    state: Literal["prefix", "string", "after", "buffer", "plain"] = "prefix"
    pending: str = ""
    """Undecided text: before the key is known, or an incomplete escape."""
    answer: list[str] = field(default_factory=list)

    def feed(self, text: str) -> list[AdapterEvent]:
        self.raw.append(text)
        if self.state == "prefix":
            self.pending += text
            return self._from_prefix()
        if self.state == "string":
            self.pending += text
            return self._from_string()
        if self.state == "plain":
            return [TextDelta(text)] if text else []
        return []

    def _from_prefix(self) -> list[AdapterEvent]:
        stripped = self.pending.lstrip()
        if stripped and not stripped.startswith("{"):
            self.state = "plain"
            text, self.pending = self.pending, ""
            return [TextDelta(text)]
        match = _PREFIX.match(self.pending)
        if match is None:
            if len(self.pending) > 64:  # an object, but not our envelope: parse at the end
                self.state = "buffer"
            return []
        rest = self.pending[match.end() :]
        if match.group(1) == "answer" and not self.structured_answer:
            if not rest:
                return []
            if rest[0] == '"':
                self.state = "string"
                self.pending = rest[1:]
                return self._from_string()
        self.state = "buffer"
        self.pending = ""
        return []

    def _from_string(self) -> list[AdapterEvent]:
        reader = JsonStringReader()
        piece, done = reader.read(self.pending)
        if done:
            self.state = "after"
            self.pending = ""
        else:
            self.pending = reader.rest
        self.answer.append(piece)
        return [TextDelta(piece)] if piece else []

    def finish(self, reason: FinishReason) -> tuple[list[AdapterEvent], FinishReason]:
        if self.state == "plain":
            return [], reason
        whole = "".join(self.raw)
        try:
            value = json.loads(whole)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            return self._unparsed(whole, reason)
        events: list[AdapterEvent] = []
        streamed = "".join(self.answer)
        answer = value.get("answer")
        if isinstance(answer, str) and not self.structured_answer:
            if answer.startswith(streamed) and len(answer) > len(streamed):
                events.append(TextDelta(answer[len(streamed) :]))
        elif answer is not None:
            events.append(TextDelta(json.dumps(answer, ensure_ascii=False)))
        calls = value.get("tool_calls")
        if isinstance(calls, list):
            for index, call in enumerate(c for c in calls if isinstance(c, dict)):
                name = str(call.get("name", ""))
                arguments = call.get("arguments", {})
                if not isinstance(arguments, dict):
                    arguments = {}
                events.append(
                    ToolCallDelta(
                        index,
                        stable_call_id(self.id_seed, index, name, arguments),
                        name,
                        json.dumps(arguments, ensure_ascii=False),
                    )
                )
            if any(isinstance(e, ToolCallDelta) for e in events) and reason == "stop":
                reason = "tool_calls"
        return events, reason

    def _unparsed(
        self, whole: str, reason: FinishReason
    ) -> tuple[list[AdapterEvent], FinishReason]:
        if self.state in ("string", "after") and (reason == "length" or self.state == "after"):
            return [], reason  # the answer streamed; only the closing was cut or odd
        if reason == "length":
            raise MalformedResponseError(
                "the emulated tool call was cut off by max_output_tokens before its JSON "
                "was complete; allow more output tokens"
            )
        raise MalformedResponseError(
            f"the model's answer is not the expected JSON envelope: {whole[:200]!r}"
        )


class JsonStringReader:
    """Decodes the inside of a JSON string as it streams: `read(text)` gives what can
    be decoded so far and whether the closing quote came; an escape cut between two
    pieces waits in `rest` (pass it again with the next piece)."""

    rest: str = ""

    def read(self, text: str) -> tuple[str, bool]:
        out: list[str] = []
        i = 0
        while i < len(text):
            char = text[i]
            if char == '"':
                self.rest = ""
                return "".join(out), True
            if char != "\\":
                out.append(char)
                i += 1
                continue
            if i + 1 >= len(text):
                break  # escape continues in the next delta
            code = text[i + 1]
            if code in _ESCAPES:
                out.append(_ESCAPES[code])
                i += 2
                continue
            if code != "u":
                out.append(code)  # invalid escape: keep the character
                i += 2
                continue
            decoded, used = _unicode_escape(text, i)
            if used == 0:
                break  # incomplete \uXXXX (or surrogate pair): wait for more
            out.append(decoded)
            i += used
        self.rest = text[i:]
        return "".join(out), False


def _unicode_escape(text: str, start: int) -> tuple[str, int]:
    """Decode `\\uXXXX` (and a following low surrogate) at `start`; (text, chars used),
    or ("", 0) when the escape is not complete yet."""
    hex1 = text[start + 2 : start + 6]
    if len(hex1) < 4:
        return "", 0
    try:
        high = int(hex1, 16)
    except ValueError:
        return hex1, 6
    if 0xD800 <= high < 0xDC00:
        tail = text[start + 6 : start + 12]
        if len(tail) < 6:
            return "", 0
        if tail.startswith("\\u"):
            try:
                low = int(tail[2:], 16)
            except ValueError:
                low = -1
            if 0xDC00 <= low < 0xE000:
                return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)), 12
        return "\ufffd", 6
    return chr(high), 6
