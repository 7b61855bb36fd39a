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
   any string value, and inside error text; so is anything matching a registered
   secret pattern (Pilothouse API keys, whose values the server never keeps).

Nothing else is scrubbed: message text, tool results and retrieved passages are
stored as they are (that is the point of a trace).

The same `Redactor` scrubs every other way a string leaves the process
(docs/security.md, "Secrets"): `RedactingFilter` on log handlers, `scrub_bytes` on
HTTP responses, `scrub_value` on rows before they are stored. One is made per
`Settings` (`pilothouse.storage.secrets.redactor_for`), and everything that learns a
secret (a provider key resolved, a tool credential read from the environment)
registers it there.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

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
        self._patterns: list[str] = []
        # One alternation of the literal values, and each pattern on its own (a pattern
        # in the alternation would stop the regex engine searching for literal prefixes:
        # several times slower on every response body).
        self._secret_re: list[re.Pattern[str]] = []
        self._secret_bytes_re: list[re.Pattern[bytes]] = []
        self._lock = threading.Lock()
        self.max_value_chars = max_value_chars
        self.add_secret_values(secret_values)

    def add_secret_values(self, values: Iterable[str]) -> None:
        """Register more exact secret strings to mask (e.g. resolved `${env:}` values).
        Each is also masked in the forms it takes on the wire and in logs: URL-encoded
        and JSON-escaped."""
        added = []
        for value in values:
            if len(value) < _MIN_SECRET_VALUE_CHARS:
                raise ValueError(
                    f"a secret value to redact must be at least {_MIN_SECRET_VALUE_CHARS} "
                    "characters long"
                )
            added += [value, quote(value, safe=""), value.replace("/", "\\/")]
        self._extend(added, [])

    def register(self, values: Iterable[str | None]) -> None:
        """`add_secret_values` for values read from configuration: empty, missing and
        too-short values (flags, placeholders) are skipped instead of refused."""
        self.add_secret_values(
            v.strip() for v in values if v is not None and len(v.strip()) >= _MIN_SECRET_VALUE_CHARS
        )

    def register_basic_auth(self, username: str, password: str) -> None:
        """A user name and password sent as HTTP Basic auth: the password, and the
        base64 of `user:password` that the Authorization header carries."""
        pair = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self.register([password, pair])

    def add_secret_patterns(self, patterns: Iterable[str]) -> None:
        """Register regular expressions for secrets whose values are not known (a
        Pilothouse API key, of which the server keeps only a hash)."""
        self._extend([], list(patterns))

    def _extend(self, values: list[str], patterns: list[str]) -> None:
        with self._lock:
            before = (len(self._secrets), len(self._patterns))
            self._secrets.update(values)
            self._patterns.extend(p for p in patterns if p not in self._patterns)
            if (len(self._secrets), len(self._patterns)) == before:
                return
            # Longest first, so a secret that contains another is masked whole.
            ordered = sorted(self._secrets, key=len, reverse=True)
            sources = (["|".join(re.escape(s) for s in ordered)] if ordered else []) + list(
                self._patterns
            )
            self._secret_re = [re.compile(s) for s in sources]
            self._secret_bytes_re = [re.compile(s.encode("utf-8")) for s in sources]

    @property
    def has_secrets(self) -> bool:
        return bool(self._secret_re)

    def is_secret_key(self, key: str) -> bool:
        return self._key_re.search(key) is not None

    def __call__(self, key: str, value: Any) -> JSONValue:
        """The value to store for attribute `key`: JSON-coerced, capped, masked."""
        if self.is_secret_key(key):
            return MASK if value is not None else None
        return self._clean(to_json_value(value, max_chars=self.max_value_chars))

    def scrub_text(self, text: str) -> str:
        """`text` with every registered secret value masked."""
        for pattern in self._secret_re:
            text = pattern.sub(MASK, text)
        return text

    def scrub_bytes(self, data: bytes, *, same_length: bool = False) -> bytes:
        """`data` with every registered secret masked; `same_length` masks with `*`s of
        the secret's length (for a body whose Content-Length was already sent)."""
        for pattern in self._secret_bytes_re if data else ():
            if same_length:
                data = pattern.sub(lambda m: b"*" * len(m.group(0)), data)
            else:
                data = pattern.sub(MASK.encode(), data)
        return data

    def scrub_value(self, value: Any) -> Any:
        """A string, or a JSON-like structure of dicts and lists, with every registered
        secret masked in its strings (keys that look secret are left alone: rows keep
        their shape)."""
        if not self._secret_re:
            return value
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, dict):
            return {k: self.scrub_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.scrub_value(v) for v in value)
        return value

    def scrub_exception(self, exc: BaseException) -> BaseException:
        """Mask registered secrets in an exception's message, in place (its `args` and
        a `detail` attribute, as `PilothouseError`s carry), and return it."""
        if not self._secret_re:
            return exc
        exc.args = tuple(self.scrub_text(a) if isinstance(a, str) else a for a in exc.args)
        detail = getattr(exc, "detail", None)
        if isinstance(detail, str):
            with contextlib.suppress(AttributeError):  # a read-only property
                exc.detail = self.scrub_text(detail)  # type: ignore[attr-defined]
        return exc

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


class RedactingFilter(logging.Filter):
    """A log filter that masks the secrets its redactor knows in every record that
    passes the handler it is attached to: the message with its arguments, the
    formatted traceback and the stack. Attach it to handlers (a filter on a logger
    sees only that logger's own records)."""

    def __init__(self, redactor: Redactor):
        super().__init__("pilothouse-redaction")
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redactor.has_secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: logging reports it later
            return True
        record.msg = self.redactor.scrub_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.scrub_text(record.exc_text)
        if record.exc_info and record.exc_info[1] is not None:
            self.redactor.scrub_exception(record.exc_info[1])
        if record.stack_info:
            record.stack_info = self.redactor.scrub_text(record.stack_info)
        return True


def install_log_redaction(redactor: Redactor, loggers: Iterable[str] = ("",)) -> RedactingFilter:
    """Attach one `RedactingFilter` for `redactor` to every handler of `loggers` (the
    root logger by default) that has none yet; returns the filter (to remove it)."""
    found = RedactingFilter(redactor)
    for name in loggers:
        for handler in logging.getLogger(name).handlers:
            if not any(
                isinstance(f, RedactingFilter) and f.redactor is redactor for f in handler.filters
            ):
                handler.addFilter(found)
    return found


def remove_log_redaction(log_filter: RedactingFilter, loggers: Iterable[str] = ("",)) -> None:
    for name in loggers:
        for handler in logging.getLogger(name).handlers:
            handler.removeFilter(log_filter)
