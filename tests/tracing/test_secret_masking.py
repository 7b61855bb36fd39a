"""The redactor as the one place secrets are masked: the forms a secret takes on the
wire, patterns, bytes, nested rows, exceptions, and log records."""

from __future__ import annotations

import base64
import io
import logging

import pytest

from pilothouse.errors import AuthenticationError
from pilothouse.tracing import MASK, Redactor, install_log_redaction, remove_log_redaction

SECRET = "sk-live/4f3e+9a0b=z"


def test_a_secret_is_masked_raw_url_encoded_and_json_escaped() -> None:
    redactor = Redactor(secret_values=[SECRET])
    text = f"raw {SECRET} url sk-live%2F4f3e%2B9a0b%3Dz json sk-live\\/4f3e+9a0b=z"
    assert redactor.scrub_text(text) == f"raw {MASK} url {MASK} json {MASK}"


def test_register_skips_what_cannot_be_a_secret() -> None:
    redactor = Redactor()
    redactor.register([None, "", "   ", "1", "true"])
    assert not redactor.has_secrets
    redactor.register(["  long-enough-secret  "])
    assert redactor.scrub_text("x long-enough-secret y") == f"x {MASK} y"
    with pytest.raises(ValueError, match="at least 6"):
        redactor.add_secret_values(["abc"])


def test_basic_auth_masks_the_password_and_the_header_value() -> None:
    redactor = Redactor()
    redactor.register_basic_auth("ops@acme.example", "hunter2-pass")
    header = base64.b64encode(b"ops@acme.example:hunter2-pass").decode()
    assert redactor.scrub_text(f"Basic {header} / hunter2-pass") == f"Basic {MASK} / {MASK}"


def test_patterns_mask_secrets_whose_values_are_unknown() -> None:
    redactor = Redactor()
    redactor.add_secret_patterns([r"\bph-[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])"])
    key = "ph-" + "a" * 43
    assert redactor.scrub_text(f"key={key}.") == f"key={MASK}."
    assert redactor.scrub_text("ph-short") == "ph-short"


def test_bytes_rows_and_exceptions() -> None:
    redactor = Redactor(secret_values=[SECRET])
    body = f'{{"error": "bad key {SECRET}"}}'.encode()
    assert SECRET.encode() not in redactor.scrub_bytes(body)
    same = redactor.scrub_bytes(body, same_length=True)
    assert len(same) == len(body) and b"*" * len(SECRET) in same
    row = {"messages": [{"text": f"echo {SECRET}"}], "n": 3, "api_key": "kept shape"}
    assert redactor.scrub_value(row) == {
        "messages": [{"text": f"echo {MASK}"}],
        "n": 3,
        "api_key": "kept shape",
    }
    error = AuthenticationError(f"HTTP 401: you sent {SECRET}", model="openai:x")
    redactor.scrub_exception(error)
    assert SECRET not in str(error) and SECRET not in error.detail and MASK in str(error)


def test_log_records_are_masked_message_arguments_and_traceback() -> None:
    redactor = Redactor(secret_values=[SECRET])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("tests.secret_masking")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        installed = install_log_redaction(redactor, ["tests.secret_masking"])
        logger.warning("refused with %s", SECRET)
        try:
            raise RuntimeError(f"upstream said {SECRET}")
        except RuntimeError:
            logger.exception("the call failed")
        remove_log_redaction(installed, ["tests.secret_masking"])
        logger.warning("after removal: %s", "plain")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    written = stream.getvalue()
    assert SECRET not in written
    assert written.count(MASK) == 2 and "after removal: plain" in written
