"""YAML 1.1 reads a bare `on`, `off`, `yes` or `no` as a boolean: a field whose values
are words (`decision_step: off`) takes the boolean back as the word it was."""

from __future__ import annotations

from typing import Any

from pydantic import BeforeValidator


def yaml_words(on: str = "on", off: str = "off") -> BeforeValidator:
    """For `Annotated[Literal[...], yaml_words()]`: true -> `on`, false -> `off`."""

    def word(value: Any) -> Any:
        if value is True:
            return on
        if value is False:
            return off
        return value

    return BeforeValidator(word)
