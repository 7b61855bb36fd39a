"""Cut rendered text into chat messages.

A role marker alone on a line (`system:`, `user:`, `assistant:`, and for generation A
`function:` and `tool:`; optionally prefixed by `#`; any case; optionally with
attributes, `assistant[name="bot"]:`) starts a message. Text before the first marker
is a system message. Blank lines around each body are trimmed; empty messages are
dropped. When a nonce is given, a marker is a boundary only if it carries
`nonce=<that nonce>`; every other marker line stays in the text as written.

User messages turn `![alt](url)` into image parts (http(s) and data: URLs; a relative
path names an image file inside the Prompty's folder, read with the same sandboxing
rules as `${file:}`). Generation A's tool syntax is understood: an assistant body
`## tool_calls:` followed by a JSON (or Python-literal) list, and `function:`/`tool:`
bodies with `## name:` / `## tool_call_id:` and `## content:`.
"""

from __future__ import annotations

import ast
import base64
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pilothouse.types import (
    ImagePart,
    Message,
    Part,
    Role,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    parse_tool_arguments,
)

from .errors import PromptyInputError, PromptyReferenceError, PromptyRenderError
from .references import safe_path
from .render import ROLES_A, marker_pattern, parse_attributes

MAX_IMAGE_BYTES = 20_000_000
_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
_IMAGE = re.compile(r"!\[(?P<alt>[^\]\n]*)\]\(\s*(?P<url>[^)\s]+)(?:\s+\"[^\"\n]*\")?\s*\)")
_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+);base64,(?P<data>[A-Za-z0-9+/=\s]+)$")
_TOOL_CALLS = re.compile(r"^\s*#{0,2}\s*tool_calls\s*:\s*\n(?P<calls>.*)$", re.DOTALL | re.I)
_NAMED = re.compile(
    r"^\s*#{0,2}\s*(?P<key>name|tool_call_id)\s*:\s*\n\s*(?P<value>\S+)\s*\n"
    r"\s*#{0,2}\s*content\s*:\s*\n?(?P<content>.*)$",
    re.DOTALL | re.I,
)


@dataclass(frozen=True)
class Segment:
    """One message's worth of rendered text."""

    role: str
    text: str
    attributes: Mapping[str, str] = field(default_factory=dict)


def split_messages(
    rendered: str, *, roles: Sequence[str] = ROLES_A, nonce: str | None = None
) -> list[Segment]:
    """Cut `rendered` at its role markers. With `nonce`, only markers carrying it count."""
    pattern = marker_pattern(roles)
    segments: list[Segment] = []
    role, attrs, lines = "system", {}, []  # type: tuple[str, dict[str, str], list[str]]
    for line in rendered.split("\n"):
        match = pattern.match(line.rstrip("\r"))
        if match is not None:
            found = parse_attributes(match["attrs"])
            given = found.pop("nonce", None)
            if nonce is None or (
                given is not None and hmac.compare_digest(given.encode(), nonce.encode())
            ):
                _flush(segments, role, attrs, lines)
                role, attrs, lines = match["role"].lower(), found, []
                continue
        lines.append(line)
    _flush(segments, role, attrs, lines)
    return segments


def _flush(segments: list[Segment], role: str, attrs: dict[str, str], lines: list[str]) -> None:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    if start < end:
        segments.append(Segment(role, "\n".join(lines[start:end]), attrs))


def segment_message(
    segment: Segment,
    *,
    base_dir: Path | None = None,
    images: Mapping[str, ImagePart] | None = None,
) -> Message:
    """The `Message` for one segment (images in user messages; A's tool syntax). The
    marker's `name` attribute is the message's speaker name; `developer` is a system
    message. `images`: placeholder -> the image an image input holds (see
    `Prompty.render`); in a user message a placeholder becomes that image part, written
    bare or as `![alt](placeholder)`."""
    role = segment.role
    text = segment.text
    name = segment.attributes.get("name") or None
    if role == "user":
        return Message("user", _content_parts(text, base_dir, images or {}), name)
    if images:
        for token, image in images.items():
            text = text.replace(token, image.url or "(image)")
    if role == "assistant":
        calls = _tool_calls(text)
        if calls is not None:
            before, parsed = calls
            parts: tuple[Part, ...] = ((TextPart(before),) if before else ()) + parsed
            return Message("assistant", parts, name)
        return Message("assistant", (TextPart(text),), name)
    if role in ("function", "tool"):
        attrs = segment.attributes
        name = attrs.get("name", "")
        call_id = attrs.get("tool_call_id") or attrs.get("id") or ""
        content = text
        named = _NAMED.match(text)
        if named is not None:
            content = named["content"].strip("\n")
            if named["key"].lower() == "name":
                name = named["value"]
            else:
                call_id = named["value"]
        if role == "function" and not call_id:
            call_id = name
        return Message("tool", (ToolResultPart(call_id, name or "", content),))
    return Message("system", (TextPart(text),), name)


def _content_parts(
    text: str, base_dir: Path | None, images: Mapping[str, ImagePart]
) -> tuple[Part, ...]:
    parts: list[Part] = []
    position = 0
    pattern = _IMAGE
    if images:
        tokens = "|".join(re.escape(t) for t in images)
        pattern = re.compile(
            rf"!\[[^\]\n]*\]\(\s*(?P<token>{tokens})\s*\)|(?P<bare>{tokens})|" + _IMAGE.pattern
        )
    for match in pattern.finditer(text):
        token = match.groupdict().get("token") or match.groupdict().get("bare")
        image = images[token] if token else _image(match["url"], base_dir)
        if image is None:
            continue
        before = text[position : match.start()].strip()
        if before:
            parts.append(TextPart(before))
        parts.append(image)
        position = match.end()
    rest = text[position:].strip() if parts else text
    if rest:
        parts.append(TextPart(rest))
    return tuple(parts)


_PROMPT_FLOW_IMAGE = re.compile(r"^data:(?P<media>image/[\w.+-]+);(?P<how>path|url|base64)$")


def image_part(value: object, input_name: str, base_dir: Path | None) -> ImagePart:
    """The image an `image` input holds: an http(s) or `data:` URL, a path in the
    Prompty's folder, a mapping `{url}` / `{data, media_type}`, or Prompt flow's
    `{"data:image/png;path|url|base64": value}`."""
    if isinstance(value, ImagePart):
        return value
    if isinstance(value, Mapping) and len(value) == 1:
        # Prompt flow's image value: {"data:image/png;path|url|base64": value}
        key, given = next(iter(value.items()))
        flow_image = _PROMPT_FLOW_IMAGE.match(str(key))
        if flow_image is not None and isinstance(given, str):
            if flow_image["how"] == "base64":
                return ImagePart(data=given, media_type=flow_image["media"])
            value = given
    if isinstance(value, Mapping):
        url = value.get("url")
        if isinstance(url, Mapping):  # OpenAI's {"image_url": {"url": ...}} shape
            url = url.get("url")
        data = value.get("data")
        if isinstance(data, str):
            return ImagePart(data=data, media_type=str(value.get("media_type", "image/png")))
        value = url
    if isinstance(value, str):
        image = _image(value.strip(), base_dir)
        if image is not None:
            return image
    raise PromptyInputError(
        f"the image input {input_name!r} must be an http(s) or data: URL, a .png/.jpg/.gif/"
        f".webp file in the Prompty's folder, {{url}} / {{data, media_type}}, or "
        f'{{"data:image/png;path": FILE}}; got {value!r:.80}'
    )


def _image(url: str, base_dir: Path | None) -> ImagePart | None:
    data = _DATA_URL.match(url)
    if data is not None:
        return ImagePart(data=re.sub(r"\s", "", data["data"]), media_type=data["type"])
    lowered = url.lower()
    if lowered.startswith(("http://", "https://")):
        return ImagePart(url=url)
    if re.match(r"^[a-z][a-z0-9+.-]*:", lowered):
        return None  # another scheme (file:, javascript:, ...): leave the text alone
    suffix = Path(url).suffix.lower()
    if suffix not in _IMAGE_TYPES:
        return None
    if base_dir is None:
        raise PromptyRenderError(
            f"the image {url!r} is a relative path, but this Prompty has no folder to read it from"
        )
    try:
        path = safe_path(url, base_dir)
    except PromptyReferenceError as exc:
        raise PromptyRenderError(f"image {url!r}: {exc.detail}") from None
    content = path.read_bytes()
    if len(content) > MAX_IMAGE_BYTES:
        raise PromptyRenderError(f"the image {url!r} is larger than {MAX_IMAGE_BYTES} bytes")
    return ImagePart(
        data=base64.b64encode(content).decode("ascii"), media_type=_IMAGE_TYPES[suffix]
    )


def _tool_calls(text: str) -> tuple[str, tuple[ToolCallPart, ...]] | None:
    index = re.search(r"^\s*#{0,2}\s*tool_calls\s*:\s*$", text, re.MULTILINE | re.IGNORECASE)
    if index is None:
        return None
    match = _TOOL_CALLS.match(text[index.start() :])
    if match is None:
        return None
    raw = match["calls"].strip()
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return None
    if not isinstance(value, list):
        return None
    calls: list[ToolCallPart] = []
    for item in value:
        if not isinstance(item, Mapping):
            return None
        function = item.get("function")
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            return None
        arguments = function.get("arguments", "")
        if isinstance(arguments, Mapping):
            args, raw_args = dict(arguments), None
        else:
            args, raw_args = parse_tool_arguments(str(arguments))
        calls.append(ToolCallPart(str(item.get("id", "")), function["name"], args, raw_args))
    return text[: index.start()].strip(), tuple(calls)


# --- thread values ------------------------------------------------------------------

_THREAD_ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}


def thread_messages(value: object, input_name: str) -> list[Message]:
    """A thread input's value as messages: `Message`s, or `{role, content}` dicts
    (content as text or a list of `{type: text|image_url, ...}` parts; assistant
    `tool_calls` and tool `tool_call_id` in the OpenAI shape)."""
    if value is None:
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise _thread_error(input_name, "must be a list of messages")
    out: list[Message] = []
    for index, item in enumerate(value):
        if isinstance(item, Message):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(_message_from_dict(item, input_name, index))
        else:
            raise _thread_error(
                input_name,
                f"item {index} is a {type(item).__name__}; give a Message or a "
                f"{{role, content}} mapping",
            )
    return out


def _thread_error(name: str, problem: str) -> PromptyInputError:
    return PromptyInputError(f"the thread input {name!r} {problem}")


def _message_from_dict(item: Mapping[str, Any], name: str, index: int) -> Message:
    role = _THREAD_ROLES.get(str(item.get("role", "")).lower())
    if role is None:
        raise _thread_error(
            name, f"item {index} has role {item.get('role')!r}, which is not a role"
        )
    content = item.get("content")
    parts: list[Part] = []
    if isinstance(content, str):
        if content:
            parts.append(TextPart(content))
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, Mapping):
                raise _thread_error(name, f"item {index} has a content part that is not a mapping")
            kind = part.get("type")
            if kind == "text":
                parts.append(TextPart(str(part.get("text", ""))))
            elif kind in ("image_url", "image"):
                url = part.get("image_url", part.get("url"))
                if isinstance(url, Mapping):
                    url = url.get("url")
                if not isinstance(url, str):
                    raise _thread_error(name, f"item {index} has an image part without a url")
                image = _image(url, None) if url.startswith("data:") else ImagePart(url=url)
                parts.append(image or ImagePart(url=url))
            else:
                raise _thread_error(name, f"item {index} has a content part of type {kind!r}")
    elif content is not None:
        raise _thread_error(name, f"item {index} has content that is neither text nor parts")
    if role == "tool":
        text = "".join(p.text for p in parts if isinstance(p, TextPart))
        call_id = str(item.get("tool_call_id", item.get("name", "")))
        return Message("tool", (ToolResultPart(call_id, str(item.get("name", "")), text),))
    if role == "assistant" and isinstance(item.get("tool_calls"), list):
        for call in item["tool_calls"]:
            function = call.get("function") if isinstance(call, Mapping) else None
            if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
                raise _thread_error(name, f"item {index} has a malformed tool call")
            arguments = function.get("arguments", "")
            if isinstance(arguments, Mapping):
                args, raw_args = dict(arguments), None
            else:
                args, raw_args = parse_tool_arguments(str(arguments))
            parts.append(ToolCallPart(str(call.get("id", "")), function["name"], args, raw_args))
    return Message(role, tuple(parts))
