"""The stalled-stream check on a busy machine: a host whose first bytes come after the
check's first time limit (a fresh-clone CI at load 3-5 once failed
`azure-a_stalled_stream_after_content_ends_with_a_timeout_event` so) still passes, and
an adapter that raises on a stall after content, or holds content back, still fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from pilothouse.errors import ModelTimeoutError
from pilothouse.testing.conformance import VendorSubject
from pilothouse.testing.conformance.chat_wire import (
    STALL_LIMITS_S,
)
from pilothouse.testing.conformance.chat_wire import (
    check_a_stalled_stream_after_content_ends_with_a_timeout_event as stalled_after_content,
)
from pilothouse.testing.loopback import serve_app
from tests.models.conformance.conftest import SPECS

ARRIVED: list[float] = []


def slow_start(app: Any, seconds: float) -> Any:
    """`app`, answering every request `seconds` late (a busy machine)."""

    async def late(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            ARRIVED.append(seconds)
            await asyncio.sleep(seconds)
        await app(scope, receive, send)

    return late


@asynccontextmanager
async def slow_vendor(provider: str, home: Path, seconds: float) -> AsyncIterator[VendorSubject]:
    spec = SPECS[provider]
    fake = spec.make_fake()
    ARRIVED.clear()
    with serve_app(slow_start(fake.app, seconds)) as url:
        yield VendorSubject(spec, fake, url, home)


async def test_first_bytes_after_the_first_limit_still_pass(tmp_path: Path) -> None:
    late = (STALL_LIMITS_S[0] + STALL_LIMITS_S[1]) / 2  # 0.75 s: the first limit runs out
    async with slow_vendor("azure", tmp_path, late) as subject:
        await stalled_after_content(subject)
    assert len(ARRIVED) == 2  # at 0.5 s no content came, at 1 s it did


async def test_content_held_back_past_every_limit_fails(tmp_path: Path) -> None:
    async with slow_vendor("openai", tmp_path, STALL_LIMITS_S[-1] + 1) as subject:
        with pytest.raises(AssertionError, match="no content before a timeout of 4s"):
            await stalled_after_content(subject)


async def test_a_stall_after_content_that_raises_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pilothouse.models.base import Model

    async with slow_vendor("openai", tmp_path, 0) as subject:
        model_of = subject.model

        def raising(*args: Any, **kwargs: Any) -> Model:
            model = model_of(*args, **kwargs)
            stream = model.stream

            async def events(request: Any) -> AsyncIterator[Any]:
                async for event in stream(request):
                    if type(event).__name__ == "StreamError":
                        raise ModelTimeoutError("stalled")
                    yield event

            monkeypatch.setattr(model, "stream", events)
            return model

        monkeypatch.setattr(subject, "model", raising)
        with pytest.raises(AssertionError, match="must end the stream with a StreamError"):
            await stalled_after_content(subject)
