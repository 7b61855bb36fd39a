"""A strict local stand-in for the Gemini API (Generative Language API v1beta).

Serves `POST /models/{model}:generateContent`, `:streamGenerateContent?alt=sse` and
`:batchEmbedContents` in the documented wire format, and answers malformed requests the
way Gemini does: HTTP 400 with `{"error": {"code", "message", "status"}}`. It checks
what a mapping bug would break: the `x-goog-api-key` header (and no key in the query
string), camelCase field names (unknown names are rejected, as the real API rejects
unknown fields), roles user/model only, non-empty parts with exactly one kind of data,
function responses right after the function-call turn they answer (same count, same
names, in order), tool declarations and tool config, and generation config.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from pilothouse.testing.conformance import HarnessSpec
from pilothouse.testing.wire import (
    CutStream,
    Facts,
    Fail,
    FakeVendor,
    Malformed,
    MidStreamError,
    Reply,
    Stall,
    Step,
    compact,
)

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
FINISH = {"stop": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}
SIGNATURE = "c2lnbmF0dXJlLWZyb20tdGhlLWZha2U="  # what the fake puts on its first call

REQUEST_FIELDS = {
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "cachedContent",
}
CONTENT_FIELDS = {"role", "parts"}
PART_DATA = {
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
}
PART_FIELDS = PART_DATA | {"thought", "thoughtSignature", "videoMetadata"}
GENERATION_FIELDS = {
    "temperature",
    "maxOutputTokens",
    "stopSequences",
    "seed",
    "topP",
    "topK",
    "candidateCount",
    "presencePenalty",
    "frequencyPenalty",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "thinkingConfig",
    "responseModalities",
}
TOOL_FIELDS = {"functionDeclarations", "googleSearch", "codeExecution", "urlContext"}
DECLARATION_FIELDS = {
    "name",
    "description",
    "parameters",
    "parametersJsonSchema",
    "response",
    "responseJsonSchema",
    "behavior",
}
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")


@dataclass(frozen=True)
class Raw:
    """A Gemini-only script step: answer with these exact response objects, as the
    JSON body (one object) or as SSE events (one per object), for shapes the neutral
    script cannot express (thought parts, Gemini call ids, blocked prompts, ...)."""

    chunks: tuple[Any, ...]


class Invalid(Exception):
    """A request Gemini would answer with 400 INVALID_ARGUMENT."""


def _check_fields(value: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"Invalid value at '{where}': expected an object")
    for key in value:
        if key not in allowed:
            raise Invalid(
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': "
                "Cannot find field."
            )
    return value


class GeminiFake(FakeVendor):
    """Plays the script in Gemini's wire format. `bad_key_status` chooses how a wrong
    key is refused: 401 UNAUTHENTICATED, or 400 with reason API_KEY_INVALID (what the
    public endpoint does for a malformed key)."""

    script: list[Step | Raw]  # type: ignore[assignment]

    def __init__(self, key: str = "test-key", *, bad_key_status: int = 401) -> None:
        super().__init__(key)
        # Keys the fake's project holds: the harness key, and the "live" key the
        # conformance suite sends to check where a key travels.
        self.valid_keys = {key, "sk-live-abc"}
        self.bad_key_status = bad_key_status
        self.app = Starlette(routes=[Route("/models/{target}", self.handle, methods=["POST"])])

    def push(self, *steps: Step | Raw) -> None:
        self.script.extend(steps)

    # --- entry -----------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        target = request.path_params["target"]
        model, _, method = target.partition(":")
        raw = await request.body()
        try:
            json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return self.error(400, "Invalid JSON payload received.")
        payload = await self.record(request)
        if "key" in request.query_params:
            return self.error(400, "This fake refuses API keys in the URL: send x-goog-api-key")
        key = request.headers.get("x-goog-api-key")
        if key is None:
            return self.error(
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        if key not in self.valid_keys:
            if self.bad_key_status == 400:
                details = [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                    }
                ]
                return self.error(400, "API key not valid. Please pass a valid API key.", details)
            return self.error(401, "Request had invalid authentication credentials.")
        if method == "batchEmbedContents":
            return self.embed(model, payload)
        stream = method == "streamGenerateContent"
        if not stream and method != "generateContent":
            return self.error(404, f"Method {method!r} is not found for models/{model}.")
        if stream and request.query_params.get("alt") != "sse":
            return self.error(400, "This fake streams only with alt=sse")
        try:
            facts = self.parse(payload)
        except Invalid as exc:
            return self.error(400, str(exc))
        facts.model = model
        facts.stream = stream
        step = self.next_step(facts)
        return self.render(step, model, stream)

    def error(self, status: int, message: str, details: list[Any] | None = None) -> Response:
        body: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": STATUS_NAMES.get(status, "UNKNOWN"),
        }
        if details:
            body["details"] = details
        return self.json_response({"error": body}, status)

    # --- request parsing ---------------------------------------------------------------

    def parse(self, payload: dict[str, Any]) -> Facts:
        _check_fields(payload, REQUEST_FIELDS, "request")
        facts = Facts()
        contents = payload.get("contents")
        if not isinstance(contents, list) or not contents:
            raise Invalid("* GenerateContentRequest.contents: contents is not specified")
        if "systemInstruction" in payload:
            system = _check_fields(
                payload["systemInstruction"], CONTENT_FIELDS, "system_instruction"
            )
            parts = self.parts(system.get("parts"), "system_instruction")
            if any(set(p) - {"text"} for p in parts):
                raise Invalid("system_instruction may hold text parts only")
            facts.system = "".join(p["text"] for p in parts)
        previous_calls: list[dict[str, Any]] = []
        for index, content in enumerate(contents):
            where = f"contents[{index}]"
            _check_fields(content, CONTENT_FIELDS, where)
            role = content.get("role")
            if role not in ("user", "model"):
                raise Invalid(f"Please use a valid role: user, model. ({where} has {role!r})")
            parts = self.parts(content.get("parts"), where)
            calls = [p["functionCall"] for p in parts if "functionCall" in p]
            responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
            if responses:
                if role != "user" or not previous_calls:
                    raise Invalid(
                        "Please ensure that function response turn comes immediately after a "
                        "function call turn."
                    )
                if len(responses) != len(previous_calls):
                    raise Invalid(
                        "Please ensure that the number of function response parts is equal to "
                        "the number of function call parts of the function call turn."
                    )
                names = [r.get("name") for r in responses]
                if names != [c.get("name") for c in previous_calls]:
                    raise Invalid(f"function responses {names} do not answer the calls in order")
            elif previous_calls:
                raise Invalid(
                    "Please ensure that function call turn comes immediately after a user turn "
                    "or after a function response turn."
                )
            if calls and role != "model":
                raise Invalid(f"{where}: functionCall parts belong in a model turn")
            previous_calls = calls
            self.content_facts(facts, role, parts)
        self.tool_facts(facts, payload)
        self.generation_facts(facts, payload.get("generationConfig"))
        return facts

    def parts(self, parts: Any, where: str) -> list[dict[str, Any]]:
        if not isinstance(parts, list) or not parts:
            raise Invalid(f"* {where}.parts: must not be empty")
        for index, part in enumerate(parts):
            _check_fields(part, PART_FIELDS, f"{where}.parts[{index}]")
            kinds = set(part) & PART_DATA
            if len(kinds) != 1:
                raise Invalid(
                    f"* {where}.parts[{index}].data: required oneof field 'data' must have "
                    "exactly one initialized field"
                )
            kind = kinds.pop()
            if kind == "text" and not isinstance(part["text"], str):
                raise Invalid(f"{where}.parts[{index}].text must be a string")
            if kind == "inlineData":
                blob = _check_fields(
                    part["inlineData"], {"mimeType", "data"}, f"{where}.inline_data"
                )
                if not blob.get("mimeType") or not blob.get("data"):
                    raise Invalid(f"{where}.parts[{index}].inlineData needs mimeType and data")
                try:
                    base64.b64decode(blob["data"], validate=True)
                except (binascii.Error, ValueError):
                    raise Invalid(f"{where}.parts[{index}].inlineData.data is not base64") from None
            if kind == "fileData":
                _check_fields(part["fileData"], {"mimeType", "fileUri"}, f"{where}.file_data")
                if not part["fileData"].get("fileUri"):
                    raise Invalid(f"{where}.parts[{index}].fileData needs fileUri")
            if kind == "functionCall":
                call = _check_fields(
                    part["functionCall"], {"id", "name", "args"}, f"{where}.function_call"
                )
                if not isinstance(call.get("name"), str) or not isinstance(
                    call.get("args", {}), dict
                ):
                    raise Invalid(
                        f"{where}.parts[{index}].functionCall needs a name and object args"
                    )
            if kind == "functionResponse":
                response = _check_fields(
                    part["functionResponse"],
                    {"id", "name", "response"},
                    f"{where}.function_response",
                )
                if not isinstance(response.get("name"), str) or not isinstance(
                    response.get("response"), dict
                ):
                    raise Invalid(
                        f"{where}.parts[{index}].functionResponse needs a name and an object "
                        "response"
                    )
        return parts

    def content_facts(self, facts: Facts, role: str, parts: list[dict[str, Any]]) -> None:
        text = "".join(p["text"] for p in parts if "text" in p)
        responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
        for response in responses:
            body = response["response"]
            value = body.get("output", body.get("error", body))
            facts.tool_results.append(
                [response["name"], value if isinstance(value, str) else compact(value)]
            )
        for part in parts:
            if "functionCall" in part:
                call = part["functionCall"]
                facts.assistant_tool_calls.append([call["name"], compact(call.get("args", {}))])
            if "inlineData" in part or "fileData" in part:
                facts.images += 1
        if role == "model":
            facts.messages.append(["assistant", text])
        elif responses and not text:
            facts.messages.append(["tool", text])
        else:
            facts.messages.append(["user", text])

    def tool_facts(self, facts: Facts, payload: dict[str, Any]) -> None:
        declared: list[str] = []
        tools = payload.get("tools", [])
        if not isinstance(tools, list):
            raise Invalid("tools must be a list")
        for t_index, tool in enumerate(tools):
            _check_fields(tool, TOOL_FIELDS, f"tools[{t_index}]")
            for d_index, declaration in enumerate(tool.get("functionDeclarations", [])):
                where = f"tools[{t_index}].function_declarations[{d_index}]"
                _check_fields(declaration, DECLARATION_FIELDS, where)
                name = declaration.get("name")
                if not isinstance(name, str) or not NAME.match(name):
                    raise Invalid(f"* {where}.name: Invalid function name {name!r}")
                if "parameters" in declaration and "parametersJsonSchema" in declaration:
                    raise Invalid(f"{where}: parameters and parametersJsonSchema are exclusive")
                schema = declaration.get("parametersJsonSchema", declaration.get("parameters"))
                params: list[str] = []
                if schema is not None:
                    if not isinstance(schema, dict) or str(schema.get("type")).lower() != "object":
                        raise Invalid(f"{where}: the parameters schema must describe an object")
                    props = schema.get("properties", {})
                    if "parameters" in declaration and not props:
                        raise Invalid(
                            f"* {where}.parameters.properties: should be non-empty for OBJECT type"
                        )
                    params = list(props)
                    missing = set(schema.get("required", [])) - set(props)
                    if missing:
                        raise Invalid(
                            f"{where}: required names unknown properties {sorted(missing)}"
                        )
                declared.append(name)
                facts.tools.append(name)
                facts.tool_params.append(params)
        if "toolConfig" not in payload:
            return
        config = _check_fields(payload["toolConfig"], {"functionCallingConfig"}, "tool_config")
        calling = _check_fields(
            config.get("functionCallingConfig", {}),
            {"mode", "allowedFunctionNames"},
            "function_calling_config",
        )
        mode = calling.get("mode", "AUTO")
        if mode not in ("AUTO", "ANY", "NONE", "VALIDATED"):
            raise Invalid(f"Invalid value at 'tool_config.function_calling_config.mode' ({mode!r})")
        allowed = calling.get("allowedFunctionNames")
        if allowed is not None:
            if mode not in ("ANY", "VALIDATED"):
                raise Invalid(
                    "allowed_function_names should only be set when the Function Calling "
                    "mode is ANY"
                )
            unknown = [n for n in allowed if n not in declared]
            if unknown:
                raise Invalid(f"allowed_function_names names undeclared functions {unknown}")
        if mode == "ANY" and allowed and len(allowed) == 1:
            facts.tool_choice = allowed[0]
        else:
            facts.tool_choice = {"AUTO": "auto", "NONE": "none", "ANY": "required"}.get(mode, mode)

    def generation_facts(self, facts: Facts, config: Any) -> None:
        if config is None:
            return
        _check_fields(config, GENERATION_FIELDS, "generation_config")
        temperature = config.get("temperature")
        if temperature is not None and not (0 <= temperature <= 2):
            raise Invalid("Invalid value at 'generation_config.temperature': must be in [0, 2]")
        max_tokens = config.get("maxOutputTokens")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise Invalid("Invalid value at 'generation_config.max_output_tokens'")
        stop = config.get("stopSequences", [])
        if not isinstance(stop, list) or len(stop) > 5:
            raise Invalid("generation_config.stop_sequences takes at most 5 strings")
        seed = config.get("seed")
        if seed is not None and not isinstance(seed, int):
            raise Invalid("Invalid value at 'generation_config.seed'")
        if "responseSchema" in config and "responseJsonSchema" in config:
            raise Invalid("responseSchema and responseJsonSchema are exclusive")
        schema = config.get("responseJsonSchema", config.get("responseSchema"))
        if schema is not None:
            if config.get("responseMimeType") != "application/json":
                raise Invalid("response_schema needs response_mime_type application/json")
            facts.schema_properties = list(schema.get("properties", {}))
        facts.temperature = temperature
        facts.max_tokens = max_tokens
        facts.stop = stop
        facts.seed = seed

    # --- rendering ---------------------------------------------------------------------

    def render(self, step: Step | Raw, model: str, stream: bool) -> Response:
        if isinstance(step, Raw):
            if stream:
                return self.sse([f"data: {json.dumps(c)}\r\n\r\n" for c in step.chunks])
            return self.json_response(step.chunks[0])
        if isinstance(step, Fail):
            details = None
            if step.retry_after is not None:
                details = [
                    {
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": f"{step.retry_after}s",
                    }
                ]
            return self.error(step.status, step.message, details)
        if isinstance(step, Malformed):
            if stream:
                return self.sse(["data: {this is not json\r\n\r\n"])
            return Response("{this is not json", media_type="application/json")
        if isinstance(step, Reply):
            if stream:
                return self.sse(
                    [f"data: {json.dumps(c)}\r\n\r\n" for c in self.chunks(step, model)]
                )
            return self.json_response(self.whole(step, model))
        if isinstance(step, CutStream):
            frames = [
                f"data: {json.dumps(self.chunk([{'text': t}], model))}\r\n\r\n"
                for t in self.split_text(step.text, 3)
            ]
            return self.sse(frames, drop=step.abrupt)
        if isinstance(step, MidStreamError):
            # Not documented by Google for alt=sse; seen in practice as an error object.
            frames = [
                f"data: {json.dumps(self.chunk([{'text': t}], model))}\r\n\r\n"
                for t in self.split_text(step.text, 2)
            ]
            error = {"error": {"code": 503, "message": step.message, "status": "UNAVAILABLE"}}
            return self.sse([*frames, f"data: {json.dumps(error)}\r\n\r\n"])
        if isinstance(step, Stall):
            if not stream:
                return StreamingResponse(
                    self.stall_body(step.seconds), media_type="application/json"
                )
            frames = (
                [f"data: {json.dumps(self.chunk([{'text': step.text}], model))}\r\n\r\n"]
                if step.text
                else []
            )
            return self.sse(frames, stall=step.seconds)
        raise AssertionError(f"unknown step {step!r}")

    async def stall_body(self, seconds: float) -> AsyncIterator[bytes]:
        await asyncio.sleep(seconds)
        yield b"{}"

    def sse(self, frames: list[str], *, drop: bool = False, stall: float = 0.0) -> Response:
        async def body() -> AsyncIterator[bytes]:
            for frame in frames:
                yield frame.encode()
                await asyncio.sleep(0.005)
            if stall:
                await asyncio.sleep(stall)
            if drop:
                raise ConnectionResetError("the fake drops the connection")

        return StreamingResponse(body(), media_type="text/event-stream")

    def usage(self, step: Reply) -> dict[str, int]:
        prompt, output, cached = step.usage
        meta = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": output,
            "totalTokenCount": prompt + output,
        }
        if cached:
            meta["cachedContentTokenCount"] = cached
        return meta

    def call_parts(self, step: Reply) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        for index, call in enumerate(step.tool_calls):
            part: dict[str, Any] = {"functionCall": {"name": call.name, "args": call.arguments}}
            if index == 0:
                part["thoughtSignature"] = SIGNATURE
            parts.append(part)
        return parts

    def finish(self, step: Reply) -> str:
        neutral = step.finish or ("tool_calls" if step.tool_calls else "stop")
        return FINISH[neutral]

    def chunk(
        self,
        parts: list[dict[str, Any]],
        model: str,
        finish: str | None = None,
        usage: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return {
            "candidates": [candidate],
            "usageMetadata": usage or {"promptTokenCount": 11, "totalTokenCount": 11},
            "modelVersion": model,
            "responseId": "fake-response",
        }

    def whole(self, step: Reply, model: str) -> dict[str, Any]:
        parts = ([{"text": step.text}] if step.text else []) + self.call_parts(step)
        return self.chunk(parts, model, self.finish(step), self.usage(step))

    def chunks(self, step: Reply, model: str) -> list[dict[str, Any]]:
        pieces = self.split_text(step.text, step.chunks)
        last = [{"text": pieces.pop()}] if pieces else []
        out = [self.chunk([{"text": p}], model) for p in pieces]
        # As Gemini does, the last chunk carries the finish reason and the final usage;
        # function calls ride in it after the last text, so a call is not the first part.
        out.append(
            self.chunk(last + self.call_parts(step), model, self.finish(step), self.usage(step))
        )
        return out

    # --- embeddings --------------------------------------------------------------------

    def embed(self, model: str, payload: dict[str, Any]) -> Response:
        requests = payload.get("requests")
        if not isinstance(requests, list) or not requests:
            return self.error(400, "* BatchEmbedContentsRequest.requests: requests is empty")
        if len(requests) > 100:
            return self.error(
                400,
                "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch",
            )
        if self.script and isinstance(self.script[0], Fail | Raw):
            return self.render(self.script.pop(0), model, False)
        vectors = []
        for index, item in enumerate(requests):
            try:
                _check_fields(
                    item,
                    {"model", "content", "taskType", "title", "outputDimensionality"},
                    f"requests[{index}]",
                )
                if item.get("model") != f"models/{model}":
                    raise Invalid(
                        f"requests[{index}].model {item.get('model')!r} differs from the "
                        f"batch model models/{model}"
                    )
                parts = self.parts(
                    (item.get("content") or {}).get("parts"), f"requests[{index}].content"
                )
            except Invalid as exc:
                return self.error(400, str(exc))
            text = "".join(p.get("text", "") for p in parts)
            if not text:
                return self.error(400, f"* requests[{index}].content: text must not be empty")
            vectors.append({"values": _vector(text)})
        return self.json_response({"embeddings": vectors})


def _vector(text: str) -> list[float]:
    """A deterministic 8-dimensional vector of `text`, so order can be checked."""
    return [
        float(len(text)),
        float(sum(map(ord, text)) % 997),
        *[float(ord(c)) for c in text[:6].ljust(6)],
    ]


def harness_specs() -> list[HarnessSpec]:
    return [
        HarnessSpec(
            provider="gemini",
            make_fake=GeminiFake,
            model_name="gemini-2.5-flash",
            features=frozenset({"seed"}),
        )
    ]
