"""One reading of Retry-After for model adapters and tool connectors alike."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from pilothouse.models.http import error_for_status as model_error_for_status
from pilothouse.tools.status import error_for_status as tool_error_for_status
from pilothouse.util.retry_after import parse_retry_after


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "whenever"}, None),
        ({}, None),
    ],
)
def test_retry_after_values(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(httpx.Headers(headers)) == expected


def test_an_http_date_is_seconds_from_now() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    wait = parse_retry_after(httpx.Headers({"Retry-After": when}))
    assert wait is not None and 25 <= wait <= 31


def test_models_and_tools_read_the_same_headers() -> None:
    # Azure's retry-after-ms was read by the model adapters but not by the tools.
    headers = httpx.Headers({"retry-after-ms": "1500"})
    model = model_error_for_status(429, b"{}", headers, model="p:m", url="http://h/v1")
    tool = tool_error_for_status(429, "slow down", headers, where="http://h/api")
    assert getattr(model, "retry_after", None) == 1.5
    assert getattr(tool, "retry_after", None) == 1.5
