"""Secret hygiene: secret-looking keys are masked at any depth, registered secret
values are masked anywhere, and nothing else is touched."""

from __future__ import annotations

import json

import pytest

from pilothouse.tracing import MASK, MemorySink, Redactor, Tracer
from pilothouse.tracing import attributes as attr


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "apiKey",
        "x-api-key",
        "OPENAI_API_KEY",
        "authorization",
        "Authorization",
        "http.request.header.authorization",
        "token",
        "access_token",
        "refresh-token",
        "password",
        "db.password",
        "client_secret",
        "secret",
        "cookie",
        "set-cookie",
        "credentials",
        "private_key",
        "auth",
    ],
)
def test_secret_looking_keys_are_masked(key: str) -> None:
    assert Redactor().is_secret_key(key)
    assert Redactor()(key, "sk-live-123") == MASK


@pytest.mark.parametrize(
    "key",
    [
        attr.USAGE_INPUT_TOKENS,
        attr.USAGE_OUTPUT_TOKENS,
        attr.USAGE_CACHED_TOKENS,
        attr.REQUEST_MAX_TOKENS,
        "prompt_token_count",
        "max_tokens",
        "author",
        "tokenizer",
        attr.TOOL_ARGUMENTS,
        attr.REQUEST_MESSAGES,
        "secretary",
    ],
)
def test_ordinary_keys_are_not_masked(key: str) -> None:
    assert not Redactor().is_secret_key(key)
    assert Redactor()(key, 120) == 120


def test_nested_secret_keys_are_masked_and_the_rest_kept() -> None:
    sink = MemorySink()
    tracer = Tracer([sink])
    arguments = {
        "title": "VPN broken",
        "auth": {"username": "ana", "password": "hunter22"},
        "headers": [{"Authorization": "Bearer abc"}, {"Accept": "json"}],
        "api_key": None,
    }
    with tracer.span("run", kind="run"), tracer.span("tool", kind="tool") as tool:
        tool.set(attr.TOOL_ARGUMENTS, arguments)
        tool.set("token", "t0ps3cr3t")
        tool.add_event("retry", {"authorization": "Bearer abc", "attempt": 2})
    spans = {s.name: s for s in sink.spans}
    stored = spans["tool"].attributes
    assert stored[attr.TOOL_ARGUMENTS] == {
        "title": "VPN broken",
        "auth": MASK,
        "headers": [{"Authorization": MASK}, {"Accept": "json"}],
        "api_key": None,  # nothing to hide: None stays None
    }
    assert stored["token"] == MASK
    assert spans["tool"].events[0].attributes == {"authorization": MASK, "attempt": 2}
    assert arguments["auth"] == {
        "username": "ana",
        "password": "hunter22",
    }  # caller's dict untouched
    assert "hunter22" not in json.dumps([s.to_dict() for s in sink.spans])


def test_extra_key_patterns() -> None:
    redactor = Redactor(extra_key_patterns=[r"ssn", r"card[_-]?number"])
    assert redactor("customer.ssn", "123-45-6789") == MASK
    assert redactor("card_number", "4111") == MASK
    assert redactor("cardholder", "Ana") == "Ana"


def test_registered_secret_values_are_masked_everywhere_including_errors() -> None:
    secret = "sk-live-9f8e7d6c5b4a"
    sink = MemorySink()
    tracer = Tracer([sink], redactor=Redactor(secret_values=[secret]))
    with (
        pytest.raises(RuntimeError),
        tracer.span("run", kind="run") as run,
    ):
        run.set(attr.RUN_QUESTION, f"my key is {secret}, is that ok?")
        run.set("config", {"url": f"https://api.example.com/?key={secret}", "n": 1})
        raise RuntimeError(f"request with {secret} refused")
    (span,) = sink.spans
    dumped = json.dumps(span.to_dict())
    assert secret not in dumped
    assert span.attributes[attr.RUN_QUESTION] == f"my key is {MASK}, is that ok?"
    assert span.attributes["config"] == {"url": f"https://api.example.com/?key={MASK}", "n": 1}
    assert span.error == f"request with {MASK} refused"


def test_secret_values_must_not_be_tiny() -> None:
    with pytest.raises(ValueError, match="at least"):
        Redactor(secret_values=["abc"])


def test_nothing_else_is_scrubbed() -> None:
    text = "Bearer looks-like-a-token but the key is ordinary: call me at +44 20 7946 0000"
    assert Redactor()(attr.TOOL_RESULT, text) == text
