"""Secret hygiene for span attributes.

Two rules, both visible (a masked value reads `[REDACTED]`, never disappears):

1. Keys that look secret: an attribute, an event attribute, or a key of a nested
   mapping anywhere inside a value (tool arguments, headers) whose name matches one of
   the patterns has its whole value replaced. The built-in patterns match `api_key`,
   `apikey`, `x-api-key`, `authorization`, `auth`, `token`, `access_token`,
   `password`, `passwd`, `secret`, `client_secret`, `cookie`, `credential(s)`,
   `private_key`, as a whole word of the key (words are split by `.`, `_`, `-`).
   So `gen_ai.usage.input_tokens` or `max_tokens` are *not* masked.
2. Known secret values: strings the caller registers (for example the values of the
   `${env:NAME}` secrets a copilot resolved) are replaced wherever they appear inside
   any string value, and inside error text.

Nothing else is scrubbed: message text, tool results and retrieved passages are
stored as they are (that is the point of a trace).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pilothouse.tracing.spans import DEFAULT_MAX_VALUE_CHARS, JSONValue, to_json_value

MASK = "[REDACTED]"

DEFAULT_SECRET_KEY_PATTERNS: tuple[str, ...] = (
    r"api[_-]?key",
    r"apikey",
    r"authorization",
    r"auth",
    # "token" but not the counting words of language models ("token_count", "tokens")
    r"token(?![_-](?:counts?|usage|limits?|budget)(?:$|[._\-/ ]))",
    r"password",
    r"passwd",
    r"pwd",
    r"secret",
    r"(?:set[_-])?cookie",
    r"credentials?",
    r"private[_-]?key",
    r"session[_-]?id",
)
# A pattern must match a whole word of the key: bounded by the key's start or end or a
# separator (. _ - / space), so "tokens" or "author" never match "token" or "auth".
_BOUNDARY_BEFORE = r"(?:^|(?<=[._\-/ ]))"
_BOUNDARY_AFTER = r"(?=$|[._\-/ ])"
_MIN_SECRET_VALUE_CHARS = 6


class Redactor:
    """Masks attribute values whose key looks secret, and known secret values.

    `extra_key_patterns` are regular expressions (case-insensitive) matched as whole
    words of a key, added to the defaults. `secret_values` are exact strings masked
    wherever they occur in string values; strings shorter than 6 characters are
    refused (masking "abc" everywhere would garble the trace and protect nothing).
    """

    def __init__(
        self,
        extra_key_patterns: Iterable[str] = (),
        *,
        secret_values: Iterable[str] = (),
        max_value_chars: int = DEFAULT_MAX_VALUE_CHARS,
    ) -> None:
        patterns = [*DEFAULT_SECRET_KEY_PATTERNS, *extra_key_patterns]
        alternatives = "|".join(f"(?:{p})" for p in patterns)
        self._key_re = re.compile(
            f"{_BOUNDARY_BEFORE}(?:{alternatives}){_BOUNDARY_AFTER}", re.IGNORECASE
        )
        self._secrets: set[str] = set()
        self._secret_re: re.Pattern[str] | None = None
        self.max_value_chars = max_value_chars
        self.add_secret_values(secret_values)

    def add_secret_values(self, values: Iterable[str]) -> None:
        """Register more exact secret strings to mask (e.g. resolved `${env:}` values)."""
        for value in values:
            if len(value) < _MIN_SECRET_VALUE_CHARS:
                raise ValueError(
                    f"a secret value to redact must be at least {_MIN_SECRET_VALUE_CHARS} "
                    "characters long"
                )
            self._secrets.add(value)
        if self._secrets:
            # Longest first, so a secret that contains another is masked whole.
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._secret_re = re.compile("|".join(re.escape(s) for s in ordered))

    def is_secret_key(self, key: str) -> bool:
        return self._key_re.search(key) is not None

    def __call__(self, key: str, value: Any) -> JSONValue:
        """The value to store for attribute `key`: JSON-coerced, capped, masked."""
        if self.is_secret_key(key):
            return MASK if value is not None else None
        return self._clean(to_json_value(value, max_chars=self.max_value_chars))

    def scrub_text(self, text: str) -> str:
        """`text` with every registered secret value masked."""
        if self._secret_re is None:
            return text
        return self._secret_re.sub(MASK, text)

    def _clean(self, value: JSONValue) -> JSONValue:
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, dict):
            return {
                k: (MASK if v is not None and self.is_secret_key(k) else self._clean(v))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._clean(v) for v in value]
        return value
