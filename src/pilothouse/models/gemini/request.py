"""Pilothouse's neutral `ModelRequest` as a `generateContent` body.

The classic API has no call ids: tool results are sent in the order of the calls of
the preceding model turn (matched by id, then by name). Thought signatures Gemini
attached to function calls are sent back with them; calls it never saw carry Google's
documented placeholder signature instead.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from pilothouse.errors import BadRequestError
from pilothouse.models.base import dump_json
from pilothouse.models.gemini.schema import gemini_json_schema, tool_parameters
from pilothouse.models.profiles import ModelProfile
from pilothouse.types import (
    ImagePart,
    Message,
    ModelRequest,
    Part,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)

# Google's documented placeholder for function calls whose real thought signature is
# unknown (history from another model or another process); Gemini 3 rejects a
# function-call turn whose first call has no signature at all.
PLACEHOLDER_SIGNATURE = "skip_thought_signature_validator"


def build_payload(
    request: ModelRequest, profile: ModelProfile, signatures: Mapping[str, str]
) -> dict[str, Any]:
    """The generateContent body for `request`; `signatures` are the thought signatures
    known for earlier calls, by call id."""
    contents = build_contents(request.conversation, signatures)
    system = request.system_text
    config: dict[str, Any] = {}
    if request.output_schema is not None:
        config["responseMimeType"] = "application/json"
        schema = gemini_json_schema(request.output_schema.schema, ordered=True)
        if profile.json_schema:
            config["responseJsonSchema"] = schema
        else:
            rule = f"Answer with JSON that validates against this JSON Schema: {dump_json(schema)}"
            system = f"{system}\n\n{rule}" if system else rule
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.max_output_tokens is not None:
        config["maxOutputTokens"] = request.max_output_tokens
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if request.seed is not None:
        config["seed"] = request.seed

    payload: dict[str, Any] = {"contents": contents}
    if system and profile.system_role:
        payload["systemInstruction"] = {"parts": [{"text": system}]}
    elif system:  # models without system instructions (e.g. Gemma): lead the first turn
        if contents and contents[0]["role"] == "user":
            contents[0]["parts"].insert(0, {"text": system})
        else:
            contents.insert(0, {"role": "user", "parts": [{"text": system}]})
    if request.tools:
        declarations = []
        for spec in request.tools:
            declaration: dict[str, Any] = {"name": spec.name, "description": spec.description}
            parameters = tool_parameters(spec)
            if parameters is not None:
                declaration["parametersJsonSchema"] = parameters
            declarations.append(declaration)
        payload["tools"] = [{"functionDeclarations": declarations}]
        payload["toolConfig"] = {
            "functionCallingConfig": function_calling_config(request.tool_choice, request.tools)
        }
    elif request.tool_choice not in ("auto", "none"):
        raise BadRequestError(
            f"tool_choice {request.tool_choice!r} needs tools, and none were given"
        )
    if config:
        payload["generationConfig"] = config
    return payload


def function_calling_config(choice: str, tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """`toolConfig.functionCallingConfig` for a neutral tool choice."""
    if choice == "auto":
        return {"mode": "AUTO"}
    if choice == "none":
        return {"mode": "NONE"}
    if choice == "required":
        return {"mode": "ANY"}
    if choice not in {t.name for t in tools}:
        known = ", ".join(t.name for t in tools) or "(none)"
        raise BadRequestError(
            f"tool_choice names {choice!r}, which is not among the tools: {known}"
        )
    return {"mode": "ANY", "allowedFunctionNames": [choice]}


# --- messages ------------------------------------------------------------------------


def build_contents(
    messages: Sequence[Message], signatures: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Gemini `contents` for a conversation (system messages are skipped).

    Roles become user/model; consecutive turns of one role are merged. Tool results
    become one user turn of `functionResponse` parts right after the model turn whose
    calls they answer, in the order of those calls (Gemini pairs them by position).
    """
    known = signatures or {}
    contents: list[dict[str, Any]] = []
    pending: list[ToolCallPart] = []
    results: list[ToolResultPart] = []

    def flush() -> None:
        if not pending and not results:
            return
        if not results:
            names = ", ".join(f"{c.name} (id {c.id})" for c in pending)
            raise BadRequestError(
                f"the assistant called {names} but no tool result follows; send a tool "
                "message with one result per call before the next turn"
            )
        _append(contents, "user", [_function_response(c, r) for c, r in _pair(pending, results)])
        pending.clear()
        results.clear()

    for message in messages:
        if message.role == "system":
            continue
        results.extend(message.tool_results)
        if message.role == "tool":
            continue
        flush()
        if message.role == "assistant":
            parts = _model_parts(message, known)
            pending.extend(message.tool_calls)
            _append(contents, "model", parts)
        else:
            _append(contents, "user", [_user_part(p) for p in message.parts if _is_content(p)])
    if results:
        flush()
    return contents


def _is_content(part: Part) -> bool:
    if isinstance(part, TextPart):
        return bool(part.text)
    return isinstance(part, ImagePart)


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _user_part(part: Part) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"text": part.text}
    if isinstance(part, ImagePart):
        return _image_part(part)
    raise BadRequestError(f"a user message cannot carry a {part.kind} part")


def _image_part(image: ImagePart) -> dict[str, Any]:
    if image.data is not None:
        return {"inlineData": {"mimeType": image.media_type, "data": image.data}}
    url = image.url or ""
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        mime, _, encoding = header[5:].partition(";")
        if encoding != "base64" or not data:
            raise BadRequestError("an image data URL must be base64 (data:<type>;base64,...)")
        return {"inlineData": {"mimeType": mime or image.media_type, "data": data}}
    guessed, _ = mimetypes.guess_type(httpx.URL(url).path)
    return {"fileData": {"mimeType": guessed or image.media_type, "fileUri": url}}


def _model_parts(message: Message, signatures: Mapping[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    first_call = True
    for part in message.parts:
        if isinstance(part, TextPart):
            if part.text:
                parts.append({"text": part.text})
        elif isinstance(part, ToolCallPart):
            call: dict[str, Any] = {"functionCall": {"name": part.name, "args": part.arguments}}
            signature = signatures.get(part.id) or (PLACEHOLDER_SIGNATURE if first_call else None)
            if signature:
                call["thoughtSignature"] = signature
            parts.append(call)
            first_call = False
        else:
            raise BadRequestError(f"an assistant message cannot carry a {part.kind} part")
    return parts


def _pair(
    calls: list[ToolCallPart], results: list[ToolResultPart]
) -> list[tuple[ToolCallPart, ToolResultPart]]:
    """Each call with its result, in call order: by id first, then by name in order."""
    slots: list[ToolResultPart | None] = [None] * len(calls)
    unmatched: list[ToolResultPart] = []
    for result in results:
        index = next(
            (i for i, c in enumerate(calls) if slots[i] is None and c.id == result.tool_call_id),
            None,
        )
        if index is None:
            unmatched.append(result)
        else:
            slots[index] = result
    for result in unmatched:
        index = next(
            (i for i, c in enumerate(calls) if slots[i] is None and c.name == result.name), None
        )
        if index is None:
            raise BadRequestError(
                f"tool result for {result.name!r} (id {result.tool_call_id}) answers no call "
                "of the preceding assistant turn; every result must answer one call"
            )
        slots[index] = result
    pairs: list[tuple[ToolCallPart, ToolResultPart]] = []
    for call, found in zip(calls, slots, strict=True):
        if found is None:
            raise BadRequestError(
                f"tool call {call.name!r} (id {call.id}) has no result; Gemini needs one "
                "result per call of the turn"
            )
        pairs.append((call, found))
    return pairs


def _function_response(call: ToolCallPart, result: ToolResultPart) -> dict[str, Any]:
    key = "error" if result.is_error else "output"
    return {"functionResponse": {"name": call.name, "response": {key: result.content}}}
