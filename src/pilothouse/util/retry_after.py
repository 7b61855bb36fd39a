"""`Retry-After` as seconds to wait: the one reading shared by the model adapters and
the tool connectors."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms` (Azure OpenAI, in milliseconds), else
    `Retry-After` (seconds, or an HTTP date); None when neither says. `headers` is
    looked up with lower-case names (httpx, aiohttp and Starlette headers are
    case-insensitive). Never negative: a date in the past means "now"."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return _seconds(float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return _seconds(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return _seconds(when.timestamp() - time.time())


def _seconds(value: float) -> float | None:
    if value != value or value in (float("inf"), float("-inf")):  # nan, inf: no advice
        return None
    return max(value, 0.0)
