"""`POST /v1/responses`: the OpenAI Responses API, for raw models, gateway routes and
copilots (what the OpenAI Agents SDK and `ChatOpenAI(use_responses_api=True)` speak).

The request is read into Chat Completions terms (responses_request.py) and answered by
the same machinery as `/v1/chat/completions`: raw models and routes through the
gateway (fallback, retries, breakers, the pass-through), copilots through a run. The
answer is written back as a `response` object or its documented stream of events
(responses_output.py).

- Raw models: `tools` go to the model; a `function_call` output item is answered by
  the client with a `function_call_output` item (with `previous_response_id`, or the
  whole history in `input`). `instructions` is a system message for this request.
- Copilots: the last user message is the question; a copilot uses its own
  instructions and tools (the client's `instructions` and `tools` are not given to
  its model); `previous_response_id` continues the copilot conversation. The
  `pilothouse` extension object (citations, run id, approvals) is a field of the
  response, and approvals are decided as on chat completions
  (`extra_body={"pilothouse": {"run_id": ..., "approve": [...]}}`).
- Responses are stored (unless `store: false`) for `previous_response_id`, for the
  key that made them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from pilothouse.copilot import ClientTools, Copilot
from pilothouse.copilot.events import Answer, RunEvent, RunFailed, RunFinished, RunStarted
from pilothouse.server.asgi import SSE_HEADERS, HTTPError, Message, Receive, Scope, Send
from pilothouse.server.auth import MODELS, Principal
from pilothouse.server.context import ServerContext
from pilothouse.server.gateway.chain import Chain
from pilothouse.server.openai.copilot import (
    answer_extension,
    answer_text,
    approval_note,
)
from pilothouse.server.openai.copilot_headers import answer_headers
from pilothouse.server.openai.copilot_start import start_run
from pilothouse.server.openai.guard import unknown_model
from pilothouse.server.openai.request import EXTENSION, parse_body
from pilothouse.server.openai.responses_from_chat import feed_completion, feed_stream, write
from pilothouse.server.openai.responses_output import ResponseBuilder
from pilothouse.server.openai.responses_request import ResponsesRequest, parse_request
from pilothouse.server.openai.responses_store import ResponseStore, StoredResponse
from pilothouse.server.promotions import Routed
from pilothouse.types import TextDelta, ToolSpec

Authorize = Callable[[Principal, str], Awaitable[None]]
Guarded = Callable[[Scope, Receive, Send, Any], Awaitable[None]]


class ResponsesAPI:
    def __init__(self, context: ServerContext, guarded: Guarded, authorize: Authorize) -> None:
        self.context = context
        self.guarded = guarded
        self.authorize = authorize
        self._store: ResponseStore | None = None

    @property
    def store(self) -> ResponseStore:
        if self._store is None:
            self._store = ResponseStore.for_settings(self.context.settings)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI endpoint: errors, auth, body limits, a client that leaves and the
        access log are handled as for chat completions (guard.py)."""

        async def work(scope: Scope, receive: Receive, reply: Send, info: dict[str, Any]) -> None:
            await self.answer(reply, info)

        await self.guarded(scope, receive, send, work)

    async def answer(self, send: Send, info: dict[str, Any]) -> None:
        principal: Principal = info["principal"]
        request = parse_request(info["data"])
        previous: StoredResponse | None = None
        if request.previous_response_id:
            previous = await self.store.get(request.previous_response_id, principal.key_id)
            if previous is None:
                raise HTTPError(
                    404,
                    f"no stored response {request.previous_response_id!r} for this key",
                    code="previous_response_not_found",
                    param="previous_response_id",
                )
        name = request.model
        if name in self.context.copilots:
            await self.authorize(principal, f"chat:{name}")
            copilot = self.context.copilots.acquire(name)
            try:
                await self._copilot(copilot, request, previous, send, principal)
            finally:
                await self.context.copilots.release(copilot)
            return
        chain = self.context.gateway.resolve(name)
        if chain is None:
            raise unknown_model(name)
        await self.authorize(principal, MODELS)
        await self._raw(chain, request, previous, send, info)

    # --- raw models and routes ---------------------------------------------------------

    async def _raw(
        self,
        chain: Chain,
        request: ResponsesRequest,
        previous: StoredResponse | None,
        send: Send,
        info: dict[str, Any],
    ) -> None:
        history = [*(previous.messages if previous else []), *request.messages]
        system = (
            [{"role": "system", "content": request.instructions}] if request.instructions else []
        )
        body: dict[str, Any] = {
            "model": request.model,
            "messages": system + history,
            **request.options,
            "stream": request.stream,
        }
        if request.stream:
            body["stream_options"] = {"include_usage": True}
        opened = await self.context.gateway.open(
            chain, parse_body(orjson.dumps(body)), request.stream
        )
        info["target"] = opened.target
        builder = ResponseBuilder(model=opened.target, request=request.echo)

        async def save() -> None:
            """Stored before the end goes out: the client may continue from it at once."""
            if request.store:
                stored = StoredResponse(
                    builder.id, builder.model, info["principal"].key_id, None, None,
                    [*history, builder.chat_message()], builder.final,
                )  # fmt: skip
                await self.store.save(stored, request.previous_response_id)

        try:
            if not request.stream:
                feed_completion(builder, orjson.loads(opened.body))
                await save()
                await _json(send, builder.final, [])
            else:
                await send(_start_stream([]))
                await write(send, builder.start())
                await feed_stream(builder, send, opened.first, opened.rest, save)
                await send({"type": "http.response.body", "body": b""})
        finally:
            await opened.aclose()
            info["trace_id"] = opened.trace_id  # written by aclose when anything failed

    # --- copilots ----------------------------------------------------------------------

    async def _copilot(
        self,
        copilot: Copilot,
        request: ResponsesRequest,
        previous: StoredResponse | None,
        send: Send,
        principal: Principal,
    ) -> None:
        ext = dict(request.extension)
        if previous is not None and previous.conversation_id:
            ext.setdefault("conversation_id", previous.conversation_id)
        specs = _client_specs(copilot, request.echo["tools"])
        results = _trailing_results(request.messages)
        routed: Routed | None = None
        if results:  # the caller ran the tools the copilot's model called: go on
            run_id = await _waiting_run(copilot, results, previous, principal)
            events = copilot.resume(run_id, {}, client=ClientTools(specs, results))
        else:
            # The copilot keeps the conversation: of the input's history only text turns.
            history = [m for m in request.messages if m["role"] != "tool" and m.get("content")]
            data = {"model": copilot.name, "messages": history, EXTENSION: ext}
            if request.user is not None:  # the end user, as on chat: one kept conversation each
                data["user"] = request.user
            promotions = self.context.promotions
            if promotions is not None and not specs:  # the caller's tools: not routed
                # A new conversation (no previous response, no earlier turns) is made
                # now, so that a canary tells it apart from every other and its chain
                # of responses keeps the model its first response had.
                new = previous is None and len(history) == 1 and promotions.in_canary(copilot.name)
                if new:
                    made = await copilot.conversations.create(copilot.name, key_id=principal.key_id)
                    ext["conversation_id"] = made.id
                routed = await promotions.route(copilot, data, principal, new=new)
            answering = routed.copilot(copilot) if routed else copilot
            attributes = routed.attributes if routed else None
            events = await start_run(answering, data, principal, ClientTools(specs), attributes)
            if routed is not None:
                events = routed.follow(events)
        builder = ResponseBuilder(model=copilot.name, request=request.echo)

        async def save(answer: Answer) -> None:
            """Stored before the end goes out: the client may continue from it at once."""
            if request.store:
                stored = StoredResponse(
                    builder.id, copilot.name, principal.key_id, answer.conversation_id,
                    answer.run_id, [], builder.final,
                )  # fmt: skip
                await self.store.save(stored, request.previous_response_id)

        try:
            await _run(copilot, builder, events, send, request.stream, save)
        finally:
            await events.aclose()  # type: ignore[attr-defined]
            if routed is not None:
                await routed.release()


async def _run(
    copilot: Copilot,
    builder: ResponseBuilder,
    events: AsyncIterator[RunEvent],
    send: Send,
    stream: bool,
    save: Callable[[Answer], Awaitable[None]],
) -> None:
    """Answer one copilot run; `save` is called with its answer before the end is sent."""
    emit: Callable[[bytes], Awaitable[None]] = (lambda b: write(send, b)) if stream else _ignore
    async for event in events:
        if isinstance(event, RunStarted):
            builder.id = f"resp_{event.run_id}"
            if stream:
                await send(_start_stream([]))
            await emit(builder.start())
        elif isinstance(event, TextDelta) and stream:
            if event.text:
                await emit(builder.text(event.text))
        elif isinstance(event, RunFinished):
            answer = event.answer
            if stream:
                if answer.status == "awaiting_approval":
                    note = approval_note(answer)
                    await emit(builder.text(("\n\n" if answer.text.strip() else "") + note))
            elif answer_text(answer):
                builder.text(answer_text(answer))
            for index, call in enumerate(answer.handed):  # for the caller to run
                await emit(builder.tool_call(index, call.id, call.name, call.arguments_json))
            builder.model = answer.model or copilot.name
            builder.extra = {EXTENSION: answer_extension(answer, copilot.name)}
            end = builder.finish(answer.usage)
            await save(answer)
            await emit(end)
            if stream:
                await send({"type": "http.response.body", "body": b""})
            else:
                await _json(send, builder.final, answer_headers(answer, copilot.name))
            return
        elif isinstance(event, RunFailed):
            answer = event.answer
            if not stream:
                raise HTTPError(
                    502,
                    f"copilot {copilot.name!r} could not answer: {answer.error}",
                    code="run_failed",
                    type="upstream_error",
                )
            builder.extra = {EXTENSION: answer_extension(answer, copilot.name)}
            error = {
                "code": "server_error",
                "message": f"copilot {copilot.name!r} failed: {answer.error}",
            }
            await emit(builder.finish(answer.usage, error=error))
            await send({"type": "http.response.body", "body": b""})
            return
    raise HTTPError(500, "the run ended without an answer", code="run_incomplete")


async def _ignore(_: bytes) -> None:
    return None


# --- the caller's own tools on a copilot ------------------------------------------------


def _client_specs(copilot: Copilot, tools: list[dict[str, Any]]) -> tuple[ToolSpec, ...]:
    own = set(copilot.toolset.names)
    specs = []
    for index, tool in enumerate(tools):
        if tool["name"] in own:
            raise HTTPError(
                400,
                f"tools[{index}].name {tool['name']!r} is a tool of copilot {copilot.name!r}; "
                "name yours differently",
                code="invalid_request",
                param=f"tools[{index}].name",
            )
        parameters = tool.get("parameters") or {"type": "object", "properties": {}}
        specs.append(ToolSpec(tool["name"], tool.get("description") or "", parameters))
    return tuple(specs)


def _trailing_results(messages: list[dict[str, Any]]) -> dict[str, str]:
    """The tool outputs at the end of the input, by call id."""
    results: dict[str, str] = {}
    for message in reversed(messages):
        if message["role"] != "tool":
            break
        results[message["tool_call_id"]] = str(message.get("content") or "")
    return results


async def _waiting_run(
    copilot: Copilot,
    results: dict[str, str],
    previous: StoredResponse | None,
    principal: Principal,
) -> str:
    """The paused run of `copilot`, started by this key, that waits for these results."""
    for paused in await copilot.paused.all(copilot.name):
        mine = paused.key_id == principal.key_id
        waits = mine and set(results) <= {c.id for c in paused.pending}
        if waits and (previous is None or previous.run_id in (None, paused.run_id)):
            return paused.run_id
    raise HTTPError(
        404,
        f"no run of copilot {copilot.name!r} waits for the results of "
        f"{', '.join(sorted(results))} (answered already?)",
        code="run_not_found",
        param="input",
    )


# --- sending -----------------------------------------------------------------------------


def _start_stream(extra: list[tuple[bytes, bytes]]) -> Message:
    return {"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *extra]}


async def _json(send: Send, body: dict[str, Any], extra: list[tuple[bytes, bytes]]) -> None:
    data = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": data})
