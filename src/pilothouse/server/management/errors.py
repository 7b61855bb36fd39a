"""Errors of the management API: one body shape for all of them, documented in the
OpenAPI document.

The body is the OpenAI-shaped error object the rest of the server answers with,
`{"error": {"message", "type", "param", "code"}}`, plus `problems` where a file was
wrong (an uploaded copilot.yaml: one entry per `file:line: field: message`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, Field


class Problem(BaseModel):
    """One thing wrong with an uploaded file."""

    file: str | None = Field(description="the file, relative to the uploaded copilot folder")
    line: int | None = Field(description="1-based line in that file, when known")
    field: str | None = Field(description="dotted field path (e.g. model.primary), when known")
    message: str


class ErrorObject(BaseModel):
    message: str = Field(description="what was wrong and what to do")
    type: str = Field(description="invalid_request_error, not_found_error, conflict_error, ...")
    param: str | None = Field(default=None, description="the parameter at fault, when one is")
    code: str | None = Field(default=None, description="a stable machine-readable code")
    problems: list[Problem] = Field(
        default_factory=list, description="file problems (an invalid copilot upload)"
    )


class ErrorResponse(BaseModel):
    error: ErrorObject


class ApiError(HTTPException):
    """An error answer of the management API; `detail` is the inner `error` object.

    The server's exception handler renders `{"error": detail}` (as for auth errors);
    a bare FastAPI app renders `{"detail": detail}` with the same status."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        type: str,
        code: str,
        param: str | None = None,
        problems: list[Problem] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        detail: dict[str, Any] = {
            "message": message,
            "type": type,
            "param": param,
            "code": code,
            "problems": [p.model_dump() for p in problems or []],
        }
        super().__init__(status_code=status_code, detail=detail, headers=dict(headers or {}))
        self.error = detail


def bad_request(message: str, *, code: str = "bad_request", param: str | None = None) -> ApiError:
    return ApiError(400, message, type="invalid_request_error", code=code, param=param)


def not_found(message: str, *, code: str = "not_found", param: str | None = None) -> ApiError:
    return ApiError(404, message, type="not_found_error", code=code, param=param)


def conflict(message: str, *, code: str = "conflict") -> ApiError:
    return ApiError(409, message, type="conflict_error", code=code)


def too_large(message: str, *, param: str | None = None) -> ApiError:
    return ApiError(413, message, type="invalid_request_error", code="too_large", param=param)


def unprocessable(
    message: str, *, code: str, problems: list[Problem] | None = None, param: str | None = None
) -> ApiError:
    return ApiError(
        422, message, type="invalid_request_error", code=code, problems=problems, param=param
    )


# --- file:line: field: message --------------------------------------------------------

_LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<rest>.*)$")
_FIELD = re.compile(r"^(?P<field>\(top level\)|[A-Za-z_][\w.\-]*): (?P<message>.+)$")
_UNLOCATED = re.compile(r"^(?P<file>[^:\s]+\.(?:ya?ml|prompty|py|json|md)): (?P<message>.+)$")


def problems_from_message(message: str, root: str) -> list[Problem]:
    """Split a definition error (`file:line: field: message` lines) into problems, with
    paths relative to `root` (the folder the upload was unpacked into)."""
    prefix = root.rstrip("/") + "/"
    problems: list[Problem] = []
    for raw in message.splitlines():
        line = raw.replace(prefix, "").replace(root, ".").strip()
        if not line:
            continue
        located = _LOCATED.match(line)
        if located:
            rest = located["rest"]
            fielded = _FIELD.match(rest)
            problems.append(
                Problem(
                    file=located["file"],
                    line=int(located["line"]),
                    field=fielded["field"] if fielded else None,
                    message=fielded["message"] if fielded else rest,
                )
            )
            continue
        unlocated = _UNLOCATED.match(line)
        if unlocated:
            problems.append(
                Problem(file=unlocated["file"], line=None, field=None, message=unlocated["message"])
            )
            continue
        problems.append(Problem(file=None, line=None, field=None, message=line))
    return problems


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: each error status with the error body and what it
    means."""
    return {
        status: {"model": ErrorResponse, "description": _MEANING[status]} for status in statuses
    }


_MEANING = {
    400: "Bad request: an unsafe or unreadable upload, or a parameter out of range",
    401: "No API key, or an unknown or revoked one",
    403: "The API key lacks the `admin` scope",
    404: "No such copilot, document, conversation, run or paused run",
    409: "Conflict: the copilot exists already, is not managed here, or the run was decided",
    413: "The upload is over a size or count limit",
    422: "The request or the uploaded copilot is invalid (problems list file:line:field)",
    429: "The API key is over its rate limit (see Retry-After)",
}
