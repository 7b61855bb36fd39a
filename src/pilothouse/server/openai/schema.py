"""The OpenAI-compatible endpoints in the app's OpenAPI document.

`POST /v1/chat/completions`, `POST /v1/responses` and `POST /v1/embeddings` are
answered by plain ASGI callables before FastAPI's routing (see app.py); the routes here
only describe them,
so the OpenAPI document (and Schemathesis, and client generators) cover the whole
server. The request models are documentation: the hot path validates with cheaper
code of its own (openai_request.py), to the same rules.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field

from pilothouse.server.openai.request import EXTENSION

ERRORS = {
    400: {"description": "Invalid request (OpenAI-shaped error body)"},
    401: {"description": "No API key, or an unknown or revoked one"},
    403: {"description": "The key lacks the scope (chat:<copilot>, chat:*, models)"},
    404: {"description": "Unknown model, conversation or paused run"},
    408: {"description": "The request body did not arrive in time"},
    413: {"description": "The request body is too large"},
    429: {"description": "Rate limited (see Retry-After)"},
    502: {"description": "Every target of the model failed (gateway)"},
    504: {"description": "Every target of the model timed out (gateway)"},
}


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ContentPart(_Open):
    type: Literal["text", "image_url"]
    text: str | None = None
    image_url: dict[str, Any] | None = None


class FunctionCall(_Open):
    name: str
    arguments: str = Field(description="the arguments as a JSON text")


class ToolCall(_Open):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class FunctionSpec(_Open):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ToolSpec(_Open):
    type: Literal["function"]
    function: FunctionSpec


class Extension(_Open):
    """Pilothouse's extension field (copilots only)."""

    conversation_id: str | None = Field(
        default=None, description="continue this stored conversation (its history is used)"
    )
    inputs: dict[str, Any] | None = Field(default=None, description="prompt template inputs")
    run_id: str | None = Field(default=None, description="the paused run to decide")
    approve: list[str] | None = Field(default=None, description="tool call ids to approve")
    deny: list[str] | None = Field(default=None, description="tool call ids to deny")
    note: str | None = Field(default=None, description="why the calls were denied")


class ChatCompletionRequest(_Open):
    model: str = Field(description="a copilot name, a gateway route, or a provider:model id")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    tools: list[ToolSpec] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(default=None, ge=1, le=1)
    pilothouse: Extension | None = Field(
        default=None, alias=EXTENSION, description="Pilothouse extension (copilots)"
    )


class EmbeddingsRequest(_Open):
    model: str = Field(description="local:all-minilm-l6-v2-int8, a route, or provider:model")
    input: str | list[str]
    encoding_format: Literal["float", "base64"] | None = None
    user: str | None = None


class ResponsesRequest(_Open):
    model: str = Field(description="a copilot name, a gateway route, or provider:model")
    input: str | list[dict[str, Any]] = Field(
        description="a string, or items: message, function_call, function_call_output"
    )
    instructions: str | None = None
    previous_response_id: str | None = None
    tools: list[dict[str, Any]] | None = Field(default=None, description="function tools")
    tool_choice: Any = None
    text: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    parallel_tool_calls: bool | None = None
    store: bool | None = None
    stream: bool | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None


router = APIRouter(tags=["OpenAI-compatible"])


@router.post(
    "/v1/chat/completions",
    summary="Chat with a copilot, a gateway route or a raw model (JSON or SSE stream)",
    responses={
        200: {
            "description": "A chat.completion object, or chat.completion.chunk server-sent "
            "events ending in `data: [DONE]` (or in an error event when the answer broke)",
            "content": {"text/event-stream": {}},
        },
        **ERRORS,  # type: ignore[dict-item]
    },
)
async def chat_completions(
    request: ChatCompletionRequest = Body(...),  # noqa: B008 - FastAPI's way
) -> dict[str, Any]:
    raise RuntimeError("served by the fast path in PilothouseApp.__call__")  # never reached


@router.post(
    "/v1/embeddings",
    summary="Embeddings (the local model, a route, or a provider:model id)",
    responses=ERRORS,  # type: ignore[arg-type]
)
async def embeddings(
    request: EmbeddingsRequest = Body(...),  # noqa: B008 - FastAPI's way
) -> dict[str, Any]:
    raise RuntimeError("served by the fast path in PilothouseApp.__call__")  # never reached


@router.post(
    "/v1/responses",
    summary="The Responses API: a copilot, a gateway route or a raw model (JSON or SSE)",
    responses={
        200: {
            "description": "A response object, or its server-sent events (response.created "
            "... response.completed, response.incomplete or response.failed)",
            "content": {"text/event-stream": {}},
        },
        **ERRORS,  # type: ignore[dict-item]
    },
)
async def responses(
    request: ResponsesRequest = Body(...),  # noqa: B008 - FastAPI's way
) -> dict[str, Any]:
    raise RuntimeError("served by the fast path in PilothouseApp.__call__")  # never reached
