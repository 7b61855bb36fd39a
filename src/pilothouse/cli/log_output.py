"""What the command line shows of log records and Python warnings: one clear line
each, never a raw library message or a traceback (unless --verbose).

    warning: pypdf: EOF marker not found
    warning: pilothouse.tools: the MCP server closed its stream

A library's message is named after the library (its top-level package), repeated
messages are shown once, and tracebacks appear only with --verbose.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import TextIO

HANDLER_NAME = "pilothouse-cli"


class OneLineHandler(logging.Handler):
    """`warning: SOURCE: message` on stderr, each distinct line once."""

    def __init__(self, stream: TextIO | None = None, *, verbose: bool = False):
        super().__init__()
        self.stream = stream
        self.verbose = verbose
        self.seen: set[str] = set()
        self.set_name(HANDLER_NAME)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format_line(record)
            if line in self.seen:
                return
            self.seen.add(line)
            stream = self.stream or sys.stderr
            stream.write(line + "\n")
            if self.verbose and record.exc_info:
                stream.write(logging.Formatter().formatException(record.exc_info) + "\n")
            stream.flush()
        except Exception:  # logging must never break the command
            self.handleError(record)

    def format_line(self, record: logging.LogRecord) -> str:
        level = record.levelname.lower()
        message = " ".join(record.getMessage().split())  # one line, whatever it held
        if record.name == "py.warnings":
            return f"{level}: {_warning_text(message)}"
        source = record.name if record.name.startswith("pilothouse") else record.name.split(".")[0]
        if not self.verbose and record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message = f"{message} ({type(error).__name__}: {error})"
        return f"{level}: {source}: {message}"


def _warning_text(formatted: str) -> str:
    """`path/to/file.py:12: UserWarning: text  code line` -> `UserWarning: text`."""
    head, sep, rest = formatted.partition(": ")
    if sep and ":" in head:  # the file:line prefix warnings.formatwarning adds
        formatted = rest
    category, sep, text = formatted.partition(": ")
    return f"{category}: {text.split('  ')[0]}" if sep else formatted


def setup(verbose: bool = False) -> None:
    """Route log records and Python warnings through one `OneLineHandler` (idempotent;
    a later call with verbose=True turns on INFO records and tracebacks)."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.get_name() == HANDLER_NAME), None)
    if handler is None:
        handler = OneLineHandler()
        root.addHandler(handler)
    assert isinstance(handler, OneLineHandler)
    handler.verbose = handler.verbose or verbose
    root.setLevel(logging.INFO if handler.verbose else logging.WARNING)
    logging.captureWarnings(True)
    warnings.simplefilter("default")  # each distinct warning once
