"""Turn a file into a `Document`: format by file suffix (the `Loader` plugins of
formats.py), parsers from well-kept libraries, and every way a file can be bad turned
into a `LoadError` with a reason."""

from __future__ import annotations

import errno
import hashlib
import stat
from pathlib import Path

from pilothouse.knowledge.documents import Block, Document
from pilothouse.knowledge.errors import LoadError
from pilothouse.knowledge.loaders.formats import (
    LOADERS,
    Loader,
    UnreadableDocumentError,
    loader_for,
    suffix_table,
)
from pilothouse.knowledge.loaders.limits import (
    DEFAULT_LOADER_LIMITS,
    LoaderLimits,
    budget,
    check_zip,
    checkpoint,
)
from pilothouse.knowledge.loaders.text import NotTextError

__all__ = [
    "DEFAULT_LOADER_LIMITS",
    "DEFAULT_MAX_FILE_BYTES",
    "LOADERS",
    "Loader",
    "LoaderLimits",
    "UnreadableDocumentError",
    "check_zip",
    "checkpoint",
    "content_hash",
    "describe_os_error",
    "kind_for",
    "load_file",
    "loader_for",
    "parse_bytes",
    "read_file",
    "suffix_table",
]

DEFAULT_MAX_FILE_BYTES = 100 * 1024 * 1024


def kind_for(path: Path) -> str | None:
    """The document kind for a file name, or None when no loader reads it."""
    loader = loader_for(path)
    return loader.kind if loader is not None else None


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_bytes(
    data: bytes,
    loader: Loader,
    *,
    source: str,
    limits: LoaderLimits = DEFAULT_LOADER_LIMITS,
) -> tuple[str | None, list[Block]]:
    """(title or None, blocks) of `data` read by `loader`, within the per-file budget
    of `limits` (limits.py); `LoadError` when unreadable or over budget."""
    kind = loader.kind
    try:
        with budget(limits) as running:
            title, found = loader.parse(data)
            blocks = list(found)
            running.check_time()
            running.check_text(sum(len(b.text) for b in blocks if isinstance(b, Block)))
    except NotTextError as exc:
        raise LoadError(source, f"{exc}; is the file really {kind}?") from None
    except UnreadableDocumentError as exc:
        raise LoadError(source, str(exc)) from None
    except MemoryError:
        raise LoadError(source, "too large to parse in memory") from None
    except Exception as exc:  # parsers raise many types on damaged input
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise LoadError(
            source,
            f"damaged or not a valid {kind.upper()} file "
            f"({type(exc).__name__}{': ' + detail if detail else ''})",
        ) from None
    if not all(isinstance(b, Block) for b in blocks) or not isinstance(title, str | None):
        raise LoadError(
            source, f"the {kind} loader returned something other than a title and blocks"
        )
    return title, blocks


def _read(path: Path, source: str, max_bytes: int) -> tuple[bytes, float]:
    """The file's bytes and modification time, refusing what cannot or should not be
    read (missing, a loop of links, not a regular file, empty, over the size limit)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise LoadError(source, describe_os_error(exc)) from None
    if not stat.S_ISREG(info.st_mode):
        raise LoadError(source, "not a regular file")
    if info.st_size == 0:
        raise LoadError(source, "empty file (0 bytes)")
    if info.st_size > max_bytes:
        raise LoadError(
            source,
            f"file is {info.st_size / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB "
            "limit; split it, or raise the limit (--max-file-mb)",
        )
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise LoadError(source, describe_os_error(exc)) from None
    if len(data) > max_bytes:  # grew while we read it
        raise LoadError(source, f"file grew past the {max_bytes / 2**20:.0f} MiB limit")
    return data, info.st_mtime


def describe_os_error(exc: OSError) -> str:
    """A short reason for an OS error on a file, saying what to do."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop; fix or remove the link"
    if isinstance(exc, PermissionError):
        return "permission denied; give the user running Pilothouse read access"
    if isinstance(exc, FileNotFoundError):
        return "not found (a broken link, or removed while ingesting)"
    return f"cannot read: {exc.strerror or exc}"


def load_file(
    path: Path,
    *,
    source: str | None = None,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
    data: bytes | None = None,
    mtime: float | None = None,
    limits: LoaderLimits = DEFAULT_LOADER_LIMITS,
) -> Document:
    """Load one file. `source` defaults to the absolute path. Pass `data`/`mtime` when
    the bytes were already read (ingestion hashes them before deciding to parse).
    `limits` is the per-file processing budget (loaders/limits.py)."""
    source = source or str(path.absolute())
    loader = loader_for(path)
    if loader is None:
        raise LoadError(source, f"unsupported file type {path.suffix or '(no suffix)'!r}")
    kind = loader.kind
    if data is None or mtime is None:
        data, mtime = _read(path, source, max_bytes)
    title, blocks = parse_bytes(data, loader, source=source, limits=limits)
    blocks = [b for b in blocks if b.text.strip()]
    if not any(b.kind != "heading" for b in blocks):
        reason = "no text found"
        if kind == "pdf":
            reason += " (a scanned PDF? text in images needs OCR, which is not supported)"
        raise LoadError(source, reason)
    return Document(
        source=source,
        title=(title or "").strip().rstrip("¶").strip() or path.stem,
        kind=kind,
        mtime=mtime,
        size=len(data),
        content_hash=content_hash(data),
        blocks=tuple(blocks),
    )


def read_file(path: Path, *, source: str, max_bytes: int) -> tuple[bytes, float]:
    """The checks and the read of `load_file`, for callers that hash before parsing."""
    return _read(path, source, max_bytes)
