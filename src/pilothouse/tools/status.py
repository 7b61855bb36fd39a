"""HTTP error statuses as typed tool errors whose text a model can act on."""

from __future__ import annotations

from collections.abc import Mapping

from pilothouse.tools.errors import (
    ServiceAuthError,
    ServiceBadRequestError,
    ServiceError,
    ServiceNotFoundError,
    ServicePermissionError,
    ServiceRateLimitedError,
    ServiceUnavailableError,
)
from pilothouse.util.retry_after import parse_retry_after


def error_for_status(
    status: int, detail: str, headers: Mapping[str, str], *, where: str, service: str = ""
) -> ServiceError:
    """The typed error for an HTTP error status, with advice the model can act on."""
    who = f"{service} " if service else ""
    text = f"{who}HTTP {status} from {where}: {detail}".rstrip(": ")
    if status == 401:
        return ServiceAuthError(
            f"{text} (the credentials were refused; the copilot's tool configuration needs a "
            "valid token; retrying will not help)",
            status=status,
        )
    if status == 403:
        return ServicePermissionError(
            f"{text} (the account lacks permission for this; do not retry)", status=status
        )
    if status == 404:
        return ServiceNotFoundError(
            f"{text} (it does not exist or is not visible to this account; check the id)",
            status=status,
        )
    if status == 429:
        retry_after = parse_retry_after(headers)
        hint = f"retry after {retry_after:g} s" if retry_after is not None else "retry later"
        return ServiceRateLimitedError(
            f"{text} (rate limited; {hint})", retry_after=retry_after, status=status
        )
    if status >= 500:
        return ServiceUnavailableError(
            f"{text} (the service failed; try again later)", status=status
        )
    return ServiceBadRequestError(f"{text} (fix the request and try again)", status=status)
