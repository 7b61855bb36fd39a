"""The fault-injection matrix: every way an upstream can fail, in JSON and in streams,
through the gateway and through the Python API. Whenever a healthy fallback exists and
no text was sent yet, the user gets the healthy answer: never an error, never a
garbled or blank answer. Without a fallback, the error is honest about the cause."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pilothouse.errors import (
    AllModelsFailedError,
    AuthenticationError,
    EmptyAnswerError,
    MalformedResponseError,
    ModelError,
    ModelTimeoutError,
    RateLimitedError,
    UnavailableError,
)
from pilothouse.models import collect
from pilothouse.types import Message, ModelRequest
from tests.failover.rig import ASK, HEALTHY_TEXT, Rig, rig, sse_payloads
from tests.fakes.faulty_upstream import FAILS_BEFORE_TEXT

# Every mode in which nothing of the answer was sent before the failure. ("refused" is
# a provider whose port has nothing listening.)
BEFORE_TEXT = ["refused", *FAILS_BEFORE_TEXT]
REQUEST = ModelRequest((Message.user("What is the capital of France?"),))


@pytest.fixture(scope="module")
def the_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    # slow_headers waits past first_byte_s (streams fail over) but not past total_s
    # (a JSON answer is simply slow): both are fine for the user.
    with rig(tmp_path_factory.mktemp("home"), delay_s=0.9, stall_s=5.0) as r:
        yield r


@pytest.fixture(scope="module")
def gateway(the_rig: Rig) -> Iterator[str]:
    routes = {
        "chain": {"targets": ["faulty:m", "healthy:m"]},
        "refused": {"targets": ["down:m", "healthy:m"]},
        "alone": {"targets": ["faulty:m"]},
    }
    with the_rig.gateway(routes) as base:
        yield base


def first_id(mode: str) -> str:
    return "down:m" if mode == "refused" else "faulty:m"


def text_of_stream(raw: str) -> str:
    text = []
    for payload in sse_payloads(raw):
        if payload == "[DONE]":
            continue
        chunk = json.loads(payload)
        assert "error" not in chunk, chunk
        for choice in chunk.get("choices") or ():
            text.append(choice["delta"].get("content") or "")
    return "".join(text)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("mode", BEFORE_TEXT)
def test_gateway_never_fails_a_user_a_healthy_fallback_can_answer(
    the_rig: Rig, gateway: str, mode: str, stream: bool
) -> None:
    the_rig.faulty.mode = "ok" if mode == "refused" else mode
    route = "refused" if mode == "refused" else "chain"
    with httpx.Client(base_url=gateway, timeout=10) as http:
        reply = http.post("/v1/chat/completions", json={"model": route, "stream": stream, **ASK})
    assert reply.status_code == 200, reply.text
    answered_by_faulty = reply.headers["x-pilothouse-model"] == "faulty:m"
    expected = the_rig.faulty.text if answered_by_faulty else HEALTHY_TEXT
    assert answered_by_faulty in (False, mode == "slow_headers" and not stream)
    if stream:
        assert text_of_stream(reply.text) == expected
        assert sse_payloads(reply.text)[-1] == "[DONE]"
    else:
        assert reply.json()["choices"][0]["message"]["content"] == expected


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("mode", BEFORE_TEXT)
async def test_python_api_never_fails_a_user_a_healthy_fallback_can_answer(
    the_rig: Rig, mode: str, stream: bool
) -> None:
    the_rig.faulty.mode = "ok" if mode == "refused" else mode
    model = the_rig.model([first_id(mode), "healthy:m"])
    try:
        response = await (collect(model.stream(REQUEST)) if stream else model.complete(REQUEST))
    finally:
        await model.aclose()
    answered_by_faulty = response.model == "faulty:m"
    assert answered_by_faulty in (False, mode == "slow_headers" and not stream)
    assert response.text == (the_rig.faulty.text if answered_by_faulty else HEALTHY_TEXT)


# --- no fallback: honest errors ------------------------------------------------------

GATEWAY_STATUS = {
    "500": 502,
    "503": 502,
    "429": 429,
    "401": 502,
    "cut": 502,
    "stall": 504,
    "malformed": 502,
    "empty_200": 502,
    "error_200": 502,
    "blank": 502,
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("mode", sorted(GATEWAY_STATUS))
def test_gateway_errors_say_what_failed(
    the_rig: Rig, gateway: str, mode: str, stream: bool
) -> None:
    the_rig.faulty.mode = mode
    with httpx.Client(base_url=gateway, timeout=10) as http:
        reply = http.post("/v1/chat/completions", json={"model": "alone", "stream": stream, **ASK})
    assert reply.status_code == GATEWAY_STATUS[mode], reply.text
    error = reply.json()["error"]
    assert "faulty:m" in error["message"]
    if mode == "429":
        assert reply.headers["retry-after"] == the_rig.faulty.retry_after


PYTHON_ERRORS: dict[str, type[ModelError]] = {
    "500": UnavailableError,
    "503": UnavailableError,
    "429": RateLimitedError,
    "401": AuthenticationError,
    "cut": UnavailableError,
    "stall": ModelTimeoutError,
    "malformed": MalformedResponseError,
    "empty_200": MalformedResponseError,
    "error_200": UnavailableError,
    "blank": EmptyAnswerError,
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("mode", sorted(PYTHON_ERRORS))
async def test_python_api_errors_say_what_failed(the_rig: Rig, mode: str, stream: bool) -> None:
    the_rig.faulty.mode = mode
    model = the_rig.model(["faulty:m"])
    expected: Any = PYTHON_ERRORS[mode]
    if stream and mode == "empty_200":
        expected = (MalformedResponseError, UnavailableError)
    try:
        with pytest.raises(expected) as failure:
            await (collect(model.stream(REQUEST)) if stream else model.complete(REQUEST))
    finally:
        await model.aclose()
    assert "faulty:m" in str(failure.value)
    assert not isinstance(failure.value, AllModelsFailedError)


# --- what the openai SDK makes of it -------------------------------------------------

UNUSABLE = ["empty_200", "error_200", "blank", "malformed"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("mode", UNUSABLE)
def test_the_openai_sdk_gets_an_answer_or_a_status_never_a_broken_200(
    the_rig: Rig, gateway: str, mode: str, stream: bool
) -> None:
    # Before: an unusable 200 was passed on, and the SDK raised a bare JSONDecodeError
    # or returned choices=None.
    import openai

    the_rig.faulty.mode = mode
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0)
    messages: Any = ASK["messages"]
    if stream:
        chunks = client.chat.completions.create(model="chain", messages=messages, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        answer = client.chat.completions.create(model="chain", messages=messages)
        text = answer.choices[0].message.content or ""
    assert text == HEALTHY_TEXT
    with pytest.raises(openai.APIStatusError) as failure:
        client.chat.completions.create(model="alone", messages=messages, stream=stream)
    assert failure.value.status_code == 502
    assert "faulty:m" in failure.value.message
