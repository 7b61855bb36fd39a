"""Pieces shared by the vendor fakes: recorded requests, scripted failures, basic auth."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response


@dataclass
class Failure:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


class FakeBase:
    """Records requests; `fail_next(...)` makes the next request(s) fail as scripted."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.failures: list[Failure] = []

    def fail_next(
        self, status: int, body: Any, headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        self.failures.append(Failure(status, body, headers or {}, times))

    def scripted(self, request: Request) -> Response | None:
        self.requests.append(request)
        if not self.failures:
            return None
        failure = self.failures[0]
        failure.times -= 1
        if failure.times <= 0:
            self.failures.pop(0)
        if isinstance(failure.body, str):
            return PlainTextResponse(failure.body, failure.status, headers=failure.headers)
        return JSONResponse(failure.body, failure.status, headers=failure.headers)


def basic_user(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password
