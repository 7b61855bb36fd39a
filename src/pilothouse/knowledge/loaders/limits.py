"""What one file may cost to read: a processing budget per file (time, text) and the
limits on ZIP-based formats (DOCX), so a small hostile file cannot take the memory or
the hours of an ingestion.

- Time: parsing one file may take `max_seconds`. Parsers call `checkpoint()` between
  units of work (a page, a paragraph, a row); the budget is checked there and once
  more when the parser returns. A single library call is not interrupted, so the
  budget bounds files of many pages, not one pathological page (pypdf caps each
  decompressed stream itself).
- Text: one file may yield at most `max_text_chars` characters of text.
- ZIP containers (DOCX; any plugin format through `check_zip`): at most
  `max_members` entries, each at most `max_member_bytes` uncompressed, all together at
  most `max_unpacked_bytes`, and no member over 1 MiB may expand more than
  `max_ratio` times its compressed size (a zip bomb expands ~1000 times). Sizes are
  read from the archive's directory before anything is decompressed; a member whose
  data is longer than its declared size is cut there by `zipfile` and fails its CRC.

Over a limit, the file fails with a `LoadError` that names it and says which limit.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from pilothouse.knowledge.loaders.formats import UnreadableDocumentError

_RATIO_FLOOR_BYTES = 2**20  # smaller members may compress as well as they like


@dataclass(frozen=True, slots=True)
class LoaderLimits:
    """The per-file budget; see the module docstring. Defaults in docs/security.md."""

    max_seconds: float = 300.0
    max_text_chars: int = 20_000_000
    max_unpacked_bytes: int = 256 * 2**20
    max_member_bytes: int = 128 * 2**20
    max_members: int = 10_000
    max_ratio: float = 200.0


DEFAULT_LOADER_LIMITS = LoaderLimits()


class BudgetExceededError(UnreadableDocumentError):
    """The file costs more to read than its budget allows."""


@dataclass(slots=True)
class Budget:
    """The running budget of the file being parsed."""

    limits: LoaderLimits
    clock: Callable[[], float] = time.monotonic
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = self.clock()

    def check_time(self) -> None:
        if self.clock() - self.started > self.limits.max_seconds:
            raise BudgetExceededError(
                f"reading it took longer than the {self.limits.max_seconds:g} s budget for "
                "one file; split it, or raise the budget (LoaderLimits.max_seconds)"
            )

    def check_text(self, chars: int) -> None:
        if chars > self.limits.max_text_chars:
            raise BudgetExceededError(
                f"it holds more than {self.limits.max_text_chars:,} characters of text, the "
                "budget for one file; split it, or raise the budget "
                "(LoaderLimits.max_text_chars)"
            )


_current: ContextVar[Budget | None] = ContextVar("pilothouse_loader_budget", default=None)


@contextmanager
def budget(limits: LoaderLimits, clock: Callable[[], float] = time.monotonic) -> Iterator[Budget]:
    """Make a fresh budget current while one file is parsed."""
    running = Budget(limits, clock)
    token = _current.set(running)
    try:
        yield running
    finally:
        _current.reset(token)


def current_limits() -> LoaderLimits:
    running = _current.get()
    return running.limits if running is not None else DEFAULT_LOADER_LIMITS


def checkpoint() -> None:
    """Called by parsers between units of work: raises `BudgetExceededError` once the
    file's time budget is spent. Does nothing outside `budget(...)`."""
    running = _current.get()
    if running is not None:
        running.check_time()


def check_zip(data: bytes, what: str = "archive") -> None:
    """Refuse a ZIP container (`data`) that would unpack past the current limits;
    `what` names the format in messages ("DOCX file"). A file that is not a ZIP at
    all is left for the parser to report."""
    limits = current_limits()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return
    if len(members) > limits.max_members:
        raise BudgetExceededError(
            f"the {what} has {len(members):,} entries, over the limit of {limits.max_members:,}"
        )
    total = 0
    for member in members:
        size = member.file_size
        total += size
        if size > limits.max_member_bytes:
            raise BudgetExceededError(
                f"the {what}'s member {member.filename!r} unpacks to {_mib(size)}, over the "
                f"{_mib(limits.max_member_bytes)} limit for one member (a zip bomb?)"
            )
        if size > _RATIO_FLOOR_BYTES and size > limits.max_ratio * max(member.compress_size, 1):
            ratio = size / max(member.compress_size, 1)
            raise BudgetExceededError(
                f"the {what}'s member {member.filename!r} expands {ratio:,.0f} times "
                f"({_mib(member.compress_size)} to {_mib(size)}), over the limit of "
                f"{limits.max_ratio:g} (a zip bomb?)"
            )
        if total > limits.max_unpacked_bytes:
            raise BudgetExceededError(
                f"the {what} unpacks to more than {_mib(limits.max_unpacked_bytes)}, over the "
                "limit for one file (a zip bomb?)"
            )


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"
