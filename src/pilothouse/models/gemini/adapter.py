"""The Gemini protocol: Google's Generative Language API (v1beta).

`POST {base}/models/{model}:generateContent` answers whole; `:streamGenerateContent?alt=sse`
streams server-sent events, each one a `GenerateContentResponse` chunk, with no end
marker other than the chunk that carries `finishReason`. The key travels only in the
`x-goog-api-key` header. `embed` uses `:batchEmbedContents`.

Choices worth knowing (see docs/providers/gemini.md):
- Tool parameters and output schemas are sent as JSON Schema (`parametersJsonSchema`,
  `responseJsonSchema`), lightly normalised by `gemini_json_schema`, so `required` and
  `enum` survive exactly instead of going through Gemini's older OpenAPI subset.
- The classic API has no call ids: tool results are sent in the order of the calls of
  the preceding model turn (matched by id, then by name), and returned calls get
  generated ids unless Gemini supplied one.
- Thought signatures Gemini attaches to function calls are remembered per model
  instance and sent back with the call; calls it never saw (another model's, or from
  before a restart) carry Google's documented placeholder signature instead.
"""

from __future__ import annotations

import json
import mimetypes
import re
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx
from httpx_sse import EventSource

from pilothouse.config import Settings
from pilothouse.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilteredError,
    MalformedResponseError,
    ModelError,
    ModelNotAvailableError,
    RateLimitedError,
)
from pilothouse.models.base import AdapterEvent, Completion, Finish, ProtocolModel, dump_json
from pilothouse.models.http import (
    error_for_status,
    error_for_transport,
    make_client,
    parse_json_body,
    parse_json_data,
    safe_url,
)
from pilothouse.models.providers import Endpoint, provider_entry
from pilothouse.types import (
    FinishReason,
    ImagePart,
    Message,
    ModelRequest,
    Part,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
    Usage,
    UsageEvent,
)

DEFAULT_EMBEDDING_MODEL = "gemini-embedding-001"
EMBED_BATCH_SIZE = 100  # the most requests one batchEmbedContents call takes
# Google's documented placeholder for function calls whose real thought signature is
# unknown (history from another model or another process); Gemini 3 rejects a
# function-call turn whose first call has no signature at all.
PLACEHOLDER_SIGNATURE = "skip_thought_signature_validator"
_SIGNATURE_MEMORY = 4096

_FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "LANGUAGE",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)
_BAD_CALLS = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)s\s*$")


# --- JSON Schema ---------------------------------------------------------------------

_METADATA_KEYS = frozenset({"$schema", "$id", "$comment", "examples", "deprecated"})
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_VALUES = ("items", "additionalProperties", "not")


def gemini_json_schema(schema: Mapping[str, Any], *, ordered: bool = False) -> dict[str, Any]:
    """A JSON Schema rewritten into the subset Gemini reads, keeping every constraint it
    can express: `const` becomes a one-value `enum`, `oneOf` becomes `anyOf`,
    `definitions` becomes `$defs` (with `$ref`s rewritten), `allOf` of plain object
    schemas is merged into its parent (so their `required` and `enum` survive), and
    metadata-only keywords (`$schema`, `$id`, `examples`, ...) are dropped. With
    `ordered`, objects get Gemini's `propertyOrdering` so JSON answers keep the
    schema's key order."""
    return _convert(dict(schema), ordered)


def tool_parameters(spec: ToolSpec) -> dict[str, Any] | None:
    """`parametersJsonSchema` for a tool, or None for a tool without parameters (Gemini
    documents leaving it unset)."""
    schema = gemini_json_schema(spec.parameters)
    schema.setdefault("type", "object")
    if schema.get("type") != "object":
        raise BadRequestError(
            f"tool {spec.name!r}: parameters must be a JSON Schema of type object, "
            f"got type {schema.get('type')!r}"
        )
    if not schema.get("properties") and set(schema) <= {"type", "properties", "required"}:
        return None
    schema.setdefault("properties", {})
    return schema


def _convert(node: dict[str, Any], ordered: bool) -> dict[str, Any]:
    node = _merge_all_of(node)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _METADATA_KEYS:
            continue
        if key == "const":
            if "enum" not in node:
                out["enum"] = [value]
        elif key == "oneOf" and "anyOf" not in node:
            out["anyOf"] = [_sub(v, ordered) for v in value]
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            name = "$defs" if key == "definitions" else key
            out[name] = {k: _sub(v, ordered) for k, v in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_sub(v, ordered) for v in value]
        elif key in _SCHEMA_VALUES:
            out[key] = (
                [_sub(v, ordered) for v in value]
                if isinstance(value, list)
                else _sub(value, ordered)
            )
        elif key == "$ref" and isinstance(value, str):
            out[key] = value.replace("#/definitions/", "#/$defs/", 1)
        else:
            out[key] = value
    properties = out.get("properties")
    if ordered and isinstance(properties, dict) and properties and "propertyOrdering" not in out:
        out["propertyOrdering"] = list(properties)
    return out


def _sub(value: Any, ordered: bool) -> Any:
    return _convert(value, ordered) if isinstance(value, dict) else value


def _merge_all_of(node: dict[str, Any]) -> dict[str, Any]:
    """Fold `allOf` members into the parent when they are plain (no `$ref`) schemas."""
    members = node.get("allOf")
    if not isinstance(members, list) or not all(
        isinstance(m, dict) and "$ref" not in m for m in members
    ):
        return node
    merged = {k: v for k, v in node.items() if k != "allOf"}
    for member in members:
        member = _merge_all_of(member)
        for key, value in member.items():
            if key == "properties" and isinstance(value, dict):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
            else:
                merged.setdefault(key, value)
    return merged


# --- request: messages ---------------------------------------------------------------


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


# --- request: options ----------------------------------------------------------------


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


# --- responses -----------------------------------------------------------------------


def usage_from(meta: Any) -> Usage:
    """Usage from `usageMetadata`. Thinking tokens are billed as output, and count so."""
    if not isinstance(meta, dict):
        return Usage()

    def count(key: str) -> int:
        value = meta.get(key)
        return int(value) if isinstance(value, int | float) else 0

    return Usage(
        input_tokens=count("promptTokenCount") + count("toolUsePromptTokenCount"),
        output_tokens=count("candidatesTokenCount") + count("thoughtsTokenCount"),
        cached_tokens=count("cachedContentTokenCount"),
    )


def finish_reason(raw: str, has_calls: bool, *, model: str) -> FinishReason:
    """The neutral finish reason for Gemini's `finishReason`."""
    if raw == "MAX_TOKENS":
        return "length"
    if raw in _FILTERED:
        return "content_filter"
    if raw in _BAD_CALLS:
        raise MalformedResponseError(
            f"Gemini could not form a valid function call (finishReason {raw}); retry, or "
            "simplify the tool schemas",
            model=model,
        )
    if raw == "STOP":
        return "tool_calls" if has_calls else "stop"
    raise MalformedResponseError(
        f"Gemini stopped for an unspecified reason (finishReason {raw}); the answer may be "
        "incomplete",
        model=model,
    )


def gemini_error(
    status: int, body: bytes | str, headers: Mapping[str, str], *, model: str, url: str
) -> ModelError:
    """The typed error for a Gemini error answer (`{"error": {code, message, status,
    details}}`): the shared mapping, refined by Gemini's own details (a `RetryInfo`
    delay, an `API_KEY_INVALID` reason, a 404 for an unknown model)."""
    error = error_for_status(status, body, headers, model=model, url=url)
    details = _error_details(body)
    reasons = {d.get("reason") for d in details}
    if "API_KEY_INVALID" in reasons or isinstance(error, AuthenticationError):
        return AuthenticationError(
            f"{error.detail}; check the Gemini key (GEMINI_API_KEY or [providers.gemini] api_key)",
            model=model,
            status=status,
        )
    if isinstance(error, RateLimitedError) and error.retry_after is None:
        for detail in details:
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                error.retry_after = float(match.group(1))
    if status == 404:
        return ModelNotAvailableError(
            f"{error.detail}; check the model name against GET {url.split('/models/')[0]}/models",
            model=model,
            status=status,
        )
    return error


def _error_details(body: bytes | str) -> list[dict[str, Any]]:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return []
    if isinstance(data, list) and data:
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


class _Reader:
    """Turns response chunks (the whole answer, or each stream event) into events."""

    def __init__(self, model: GeminiModel, url: str) -> None:
        self.model = model
        self.url = url
        self.calls = 0
        self.finish: FinishReason | None = None

    def read(self, chunk: Any) -> list[AdapterEvent]:
        mid = self.model.id
        if not isinstance(chunk, dict):
            raise MalformedResponseError("Gemini sent a chunk that is not a JSON object", model=mid)
        if isinstance(chunk.get("error"), dict):  # not documented for SSE, but seen
            code = chunk["error"].get("code")
            raise gemini_error(
                code if isinstance(code, int) else 500,
                dump_json(chunk),
                {},
                model=mid,
                url=self.url,
            )
        feedback = chunk.get("promptFeedback")
        block = feedback.get("blockReason") if isinstance(feedback, dict) else None
        if block:
            raise ContentFilteredError(
                f"Gemini blocked the prompt (blockReason {block}); rephrase it or use another "
                "model",
                model=mid,
            )
        events: list[AdapterEvent] = []
        candidates = chunk.get("candidates") or []
        if not isinstance(candidates, list) or (candidates and not isinstance(candidates[0], dict)):
            raise MalformedResponseError("Gemini sent malformed candidates", model=mid)
        raw_finish: str | None = None
        if candidates:
            candidate = candidates[0]
            content = candidate.get("content") or {}
            parts = content.get("parts") if isinstance(content, dict) else None
            for part in parts if isinstance(parts, list) else []:
                events.extend(self._part(part))
            raw_finish = candidate.get("finishReason")
        if "usageMetadata" in chunk:
            events.append(UsageEvent(usage_from(chunk["usageMetadata"])))
        if raw_finish:
            self.finish = finish_reason(str(raw_finish), self.calls > 0, model=mid)
        return events

    def _part(self, part: Any) -> list[AdapterEvent]:
        if not isinstance(part, dict):
            raise MalformedResponseError(
                "Gemini sent a part that is not an object", model=self.model.id
            )
        call = part.get("functionCall")
        if isinstance(call, dict):
            name = call.get("name")
            args = call.get("args") or {}
            if not isinstance(name, str) or not name or not isinstance(args, dict):
                raise MalformedResponseError(
                    "Gemini sent a functionCall without a name or with non-object args",
                    model=self.model.id,
                )
            call_id = str(call.get("id") or f"call_{uuid.uuid4().hex[:24]}")
            if isinstance(part.get("thoughtSignature"), str):
                self.model.remember_signature(call_id, part["thoughtSignature"])
            index = self.calls
            self.calls += 1
            return [ToolCallDelta(index, id=call_id, name=name, arguments_delta=dump_json(args))]
        text = part.get("text")
        if isinstance(text, str) and text and not part.get("thought"):
            return [TextDelta(text)]
        return []


# --- the adapter ---------------------------------------------------------------------


class GeminiModel(ProtocolModel):
    """A Gemini model over the Generative Language API."""

    def __init__(self, model_id: str, name: str, endpoint: Endpoint, settings: Settings):
        super().__init__(model_id)
        self.name = name
        self.endpoint = endpoint
        entry = provider_entry(endpoint.provider, settings)
        self._key_env = settings.provider(endpoint.provider).api_key_env or entry.key_env
        self._key_required = entry.key_required
        self._client: httpx.AsyncClient | None = None
        self._signatures: OrderedDict[str, str] = OrderedDict()

    # --- plumbing --------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = make_client(self.endpoint)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _headers(self) -> dict[str, str]:
        if self.endpoint.api_key is None and self._key_required:
            where = self._key_env or f"[providers.{self.endpoint.provider}] api_key"
            raise AuthenticationError(f"no Gemini API key: set {where}", model=self.id)
        return self.endpoint.auth_headers()

    def _url(self, model: str, method: str) -> str:
        path = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
        return f"{self.endpoint.base_url}/{path}:{method}"

    def remember_signature(self, call_id: str, signature: str) -> None:
        """Keep a call's thought signature to send back with it (bounded memory)."""
        self._signatures[call_id] = signature
        self._signatures.move_to_end(call_id)
        while len(self._signatures) > _SIGNATURE_MEMORY:
            self._signatures.popitem(last=False)

    async def _post(self, url: str, payload: dict[str, Any], *, label: str) -> dict[str, Any]:
        headers = self._headers()
        shown = safe_url(url)
        try:
            response = await self._http().post(url, json=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise error_for_transport(exc, model=label, url=shown) from None
        if response.status_code >= 400:
            raise gemini_error(
                response.status_code, response.content, response.headers, model=label, url=shown
            )
        return parse_json_body(response.content, model=label, url=shown)

    # --- the request -----------------------------------------------------------------

    def payload(self, request: ModelRequest) -> dict[str, Any]:
        """The generateContent body for `request`."""
        contents = build_contents(request.conversation, self._signatures)
        system = request.system_text
        config: dict[str, Any] = {}
        if request.output_schema is not None:
            config["responseMimeType"] = "application/json"
            schema = gemini_json_schema(request.output_schema.schema, ordered=True)
            if self.profile.json_schema:
                config["responseJsonSchema"] = schema
            else:
                rule = (
                    f"Answer with JSON that validates against this JSON Schema: {dump_json(schema)}"
                )
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
        if system and self.profile.system_role:
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

    # --- chat ------------------------------------------------------------------------

    async def _complete(self, request: ModelRequest) -> Completion:
        body = self.payload(request)
        url = self._url(self.name, "generateContent")
        data = await self._post(url, body, label=self.id)
        reader = _Reader(self, safe_url(url))
        events = reader.read(data)
        if not data.get("candidates"):
            raise MalformedResponseError("Gemini answered without candidates", model=self.id)
        if reader.finish is None:
            raise MalformedResponseError("Gemini answered without a finishReason", model=self.id)
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        parts: list[Part] = [TextPart(text)] if text else []
        usage = Usage()
        for event in events:
            if isinstance(event, ToolCallDelta):
                args = json.loads(event.arguments_delta)
                parts.append(ToolCallPart(event.id or "", event.name or "", args))
            elif isinstance(event, UsageEvent):
                usage = event.usage
        return Completion(Message("assistant", tuple(parts)), reader.finish, usage)

    async def _stream(self, request: ModelRequest) -> AsyncIterator[AdapterEvent]:
        body = self.payload(request)
        headers = {**self._headers(), "Accept": "text/event-stream"}
        url = self._url(self.name, "streamGenerateContent") + "?alt=sse"
        shown = safe_url(url)
        reader = _Reader(self, shown)
        try:
            async with self._http().stream("POST", url, json=body, headers=headers) as response:
                if response.status_code >= 400:
                    raw = await response.aread()
                    raise gemini_error(
                        response.status_code, raw, response.headers, model=self.id, url=shown
                    )
                async for sse in EventSource(response).aiter_sse():
                    for event in reader.read(parse_json_data(sse, model=self.id, url=shown)):
                        yield event
        except httpx.HTTPError as exc:
            # A drop after the chunk that finished the answer loses nothing.
            if reader.finish is None:
                raise error_for_transport(exc, model=self.id, url=shown) from None
        if reader.finish is not None:
            yield Finish(reader.finish)

    # --- embeddings ------------------------------------------------------------------

    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> list[list[float]]:
        """One vector per text, in order, via `batchEmbedContents` (in batches of 100)."""
        if isinstance(texts, str):
            raise BadRequestError("embed() takes a list of texts, not one string", model=self.id)
        items = list(texts)
        for index, text in enumerate(items):
            if not isinstance(text, str) or not text.strip():
                raise BadRequestError(
                    f"text {index} is empty or not a string; Gemini cannot embed it", model=self.id
                )
        name = model or DEFAULT_EMBEDDING_MODEL
        label = f"{self.endpoint.provider}:{name}"
        path = name if name.startswith("models/") else f"models/{name}"
        url = self._url(name, "batchEmbedContents")
        vectors: list[list[float]] = []
        for start in range(0, len(items), EMBED_BATCH_SIZE):
            batch = items[start : start + EMBED_BATCH_SIZE]
            requests = [{"model": path, "content": {"parts": [{"text": t}]}} for t in batch]
            data = await self._post(url, {"requests": requests}, label=label)
            vectors.extend(_vectors(data, len(batch), label=label))
        return vectors


def _vectors(data: dict[str, Any], expected: int, *, label: str) -> list[list[float]]:
    embeddings = data.get("embeddings")
    if not isinstance(embeddings, list) or len(embeddings) != expected:
        got = len(embeddings) if isinstance(embeddings, list) else "no"
        raise MalformedResponseError(
            f"batchEmbedContents returned {got} embeddings for {expected} texts", model=label
        )
    vectors: list[list[float]] = []
    for embedding in embeddings:
        values = embedding.get("values") if isinstance(embedding, dict) else None
        if not isinstance(values, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        ):
            raise MalformedResponseError("an embedding has no numeric values", model=label)
        vectors.append([float(v) for v in values])
    return vectors
