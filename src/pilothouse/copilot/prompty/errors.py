"""Errors raised while loading, resolving, rendering or parsing a Prompty file.

Every message says which file, and where the problem comes from the front matter, the
line and the field (`prompts/chat.prompty:7: model.options.temperature: ...`), so a
person can fix the file without reading code.
"""

from __future__ import annotations

from pathlib import Path

from pilothouse.errors import PilothouseError


class PromptyError(PilothouseError):
    """A Prompty file is malformed, refers to something it may not, or cannot render."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
        self.field = field
        self.detail = message
        where = str(path) if path is not None else "<prompty>"
        if line is not None:
            where += f":{line}"
        prefix = f"{where}: "
        if field:
            prefix += f"{field}: "
        super().__init__(prefix + message)


class PromptyReferenceError(PromptyError):
    """A `${env:...}` or `${file:...}` reference cannot be resolved or is refused."""


class PromptyInputError(PromptyError):
    """The inputs given to `render` do not match what the Prompty declares."""


class PromptyRenderError(PromptyError):
    """The template failed to render (syntax error, sandbox violation, bad value)."""
