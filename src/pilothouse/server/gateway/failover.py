"""Gateway failover: answering one chain (a public model name's targets in order).

The answer starts on the first target that gives a usable one (models/usable.py); a
target that fails before the first byte reaches the client moves the request on, after
the route's retries, to the next one (see gateway.py's docstring for when). Every
attempt takes a breaker permit and settles it. Retries never wait when they cannot
help: not for a breaker that just opened, not past the route's `total_s`, and not at
all on a rate limit or a timeout when another target comes next.

OpenAI-protocol targets go through the pass-through (passthrough.py); any other model
through the neutral model layer, encoded back into OpenAI's format (model_target.py).
When everything failed, the status says why across all targets (models/failures.py):
all rate limited 429 with the shortest Retry-After, all timed out 504, otherwise 502,
whether the upstream or its open breaker refused; the body names each target's failure.

With the route's `continue_streams`, a stream that breaks after text was sent is
carried on by a later target that can continue an assistant message, after a chunk
that says so (`"pilothouse": {"continued_on": ...}`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import orjson

from pilothouse.errors import BadRequestError, ContextTooLongError, ModelError
from pilothouse.models.attempts import Timer, current_observer, outcome, report
from pilothouse.models.base import continuation_request
from pilothouse.models.failures import summarize
from pilothouse.models.retry import RetryPolicy
from pilothouse.server.asgi import HTTPError, sse_error
from pilothouse.server.gateway.chain import Chain, ModelTarget, Target
from pilothouse.server.gateway.model_target import open_model
from pilothouse.server.gateway.passthrough import (
    Attempt,
    Continuation,
    Opened,
    PassThroughTarget,
    UpstreamClientError,
    open_passthrough,
    stream_error,
)
from pilothouse.server.openai.request import to_model_request
from pilothouse.tracing.attributes import CANCELLED

# --- answering -----------------------------------------------------------------------


async def open_chain(
    session: aiohttp.ClientSession, chain: Chain, data: dict[str, Any], stream: bool
) -> Opened:
    """Start the answer on the first target that can give one (see the module
    docstring). Raises HTTPError when every target failed, UpstreamClientError
    when an upstream refused the request itself."""
    errors: list[ModelError] = []
    last = len(chain.targets) - 1
    for index, target in enumerate(chain.targets):
        continuation = _continuation(session, chain, index, data) if stream else None
        try:
            if isinstance(target, ModelTarget):
                return await open_model(target, data, stream, continuation)
            retry = chain.retry if index == last else replace(chain.retry, before_fallback=True)
            return await _open_upstream(session, chain, target, retry, data, stream, continuation)
        except ModelError as error:
            errors.append(error)
            refused = isinstance(error, BadRequestError) and not isinstance(
                error, ContextTooLongError
            )
            if not error.failover or refused:
                break
    raise _failed(chain, errors)


async def _open_upstream(
    session: aiohttp.ClientSession,
    chain: Chain,
    target: PassThroughTarget,
    retry: RetryPolicy,
    data: dict[str, Any],
    stream: bool,
    continuation: Continuation | None,
) -> Opened:
    """One pass-through target, with the route's retries."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    attempt = 1
    while True:
        timer = Timer()
        try:
            permit = target.breaker.acquire()
        except ModelError as error:  # its circuit is open: on to the next target
            report(timer.ended(target.id, "failed", error))
            raise
        try:
            opened = await open_passthrough(
                session,
                target,
                Attempt(
                    permit,
                    chain.timeout,
                    chain.stream_timeout if stream else chain.json_timeout,
                    continuation,
                ),
                data,
                stream,
            )
        except ModelError as error:
            permit.failure(error)
            report(timer.ended(target.id, "failed", error))
            delay = retry.delay(attempt, error, chain.rng, loop.time() - started)
            if delay is None or target.breaker.refuses():
                raise
        except BaseException as error:  # an upstream 400, the client gone: no verdict
            permit.release()
            report(timer.ended(target.id, outcome(error), error))
            raise
        else:
            return _reported(opened, timer)
        await asyncio.sleep(delay)
        attempt += 1


def _reported(opened: Opened, timer: Timer) -> Opened:
    """Tell the attempt that gave `opened` to the context's observer: now for a JSON
    answer, when the answer is closed for a stream (completed, broken or left)."""
    observer = current_observer()
    if observer is None:
        return opened
    if opened.rest is None:
        report(timer.ended(opened.target, "completed", answered_by=opened.target), observer)
        return opened

    async def told() -> None:
        if opened.error is not None:
            attempt = timer.ended(opened.target, "failed", opened.error)
        elif opened.ended:
            attempt = timer.ended(opened.target, "completed", answered_by=opened.target)
        else:
            left = "the client left before the end of the stream"
            attempt = timer.ended(opened.target, CANCELLED, left)
        observer(attempt)

    opened.closers.append(told)
    return opened


# --- continuing a broken stream ------------------------------------------------------


def _continuation(
    session: aiohttp.ClientSession, chain: Chain, index: int, data: dict[str, Any]
) -> Continuation | None:
    """What carries target `index`'s stream on if it breaks after text was sent: the
    later targets that can continue an assistant message, tried in order."""
    if not chain.continue_streams:
        return None
    later = [t for t in chain.targets[index + 1 :] if _can_continue(t)]
    if not later:
        return None

    async def carry_on(error: ModelError, text: str, opened: Opened) -> AsyncIterator[bytes]:
        for target in later:
            try:
                follow = await _open_follow_up(session, chain, target, data, text)
            except (ModelError, UpstreamClientError):
                continue
            opened.outcome = f"continued:{target.id}"
            try:
                yield _continued_marker(target.id, error)
                yield follow.first
                if follow.rest is not None:
                    async for out in follow.rest:
                        yield out
            finally:
                await follow.aclose()
            return
        yield sse_error(stream_error(error, opened.target))

    return carry_on


def _can_continue(target: Target) -> bool:
    if isinstance(target, ModelTarget):
        return target.model.continues_assistant()
    return bool(target.prefill)


async def _open_follow_up(
    session: aiohttp.ClientSession,
    chain: Chain,
    target: Target,
    data: dict[str, Any],
    text: str,
) -> Opened:
    """Open `target` on the request with `text` as the answer so far to continue."""
    if isinstance(target, ModelTarget):
        request = continuation_request(to_model_request(data), text)
        opened = await open_model(target, data, True, request=request)
        role_end = opened.first.find(b"\n\n") + 2  # the client has its role chunk already
        opened.first = opened.first[role_end:]
        return opened
    body = dict(data)
    body["messages"] = [*data.get("messages", []), {"role": "assistant", "content": text}]
    if target.prefill == "continue_final_message":  # vLLM's documented parameters
        body["continue_final_message"] = True
        body["add_generation_prompt"] = False
    timer = Timer()
    try:
        permit = target.breaker.acquire()
    except ModelError as error:
        report(timer.ended(target.id, "failed", error))
        raise
    attempt = Attempt(permit, chain.timeout, chain.stream_timeout)
    try:
        opened = await open_passthrough(session, target, attempt, body, True)
    except Exception as error:
        permit.failure(error)
        report(timer.ended(target.id, "failed", error))
        raise
    except BaseException as error:
        permit.release()
        report(timer.ended(target.id, outcome(error), error))
        raise
    return _reported(opened, timer)


def _continued_marker(target: str, error: ModelError) -> bytes:
    """A chunk without choices that tells the client (and anyone reading the raw
    stream) that what follows comes from another target."""
    chunk = {
        "object": "chat.completion.chunk",
        "choices": [],
        "pilothouse": {"continued_on": target, "after_error": str(error)},
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _failed(chain: Chain, errors: list[ModelError]) -> HTTPError:
    """The client's answer when no target could answer."""
    summary = "; ".join(f"{type(e).__name__}: {e}" for e in errors) or "no target"
    what = f"route {chain.name!r}" if chain.route is not None else f"model {chain.name!r}"
    message = f"{what}: every target failed ({summary})"
    verdict = summarize(errors)
    if verdict.cause == "rate_limited":
        wait = verdict.retry_after
        seconds = str(max(1, int(wait + 0.999))).encode() if wait is not None else None
        headers = [(b"retry-after", seconds)] if seconds else []
        return HTTPError(429, message, code="upstream_rate_limited", headers=headers)
    if verdict.cause == "timeout":
        return HTTPError(504, message, code="upstream_timeout")
    if errors and isinstance(errors[-1], BadRequestError):
        return HTTPError(400, message, code="upstream_rejected", type="invalid_request_error")
    return HTTPError(502, message, code="upstream_failed", type="upstream_error")
