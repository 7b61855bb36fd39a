"""Turn a file into a `Document`: format by file suffix, parsers from well-kept
libraries, and every way a file can be bad turned into a `LoadError` with a reason."""

from __future__ import annotations

import errno
import hashlib
import stat
from collections.abc import Callable
from pathlib import Path

from pilothouse.knowledge.documents import Block, Document, DocumentKind
from pilothouse.knowledge.errors import LoadError
from pilothouse.knowledge.loaders.docx import parse_docx
from pilothouse.knowledge.loaders.html import parse_html
from pilothouse.knowledge.loaders.markdown import parse_markdown
from pilothouse.knowledge.loaders.pdf import EncryptedError, parse_pdf
from pilothouse.knowledge.loaders.records import parse_csv, parse_json
from pilothouse.knowledge.loaders.text import NotTextError, parse_text

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "SUFFIXES",
    "content_hash",
    "describe_os_error",
    "kind_for",
    "load_file",
    "parse_bytes",
    "read_file",
]

DEFAULT_MAX_FILE_BYTES = 100 * 1024 * 1024

SUFFIXES: dict[str, DocumentKind] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".rst": "text",
    ".log": "text",
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}

Parser = Callable[[bytes], tuple[str | None, list[Block]]]
_PARSERS: dict[DocumentKind, Parser] = {
    "pdf": parse_pdf,
    "docx": parse_docx,
    "html": parse_html,
    "markdown": parse_markdown,
    "text": parse_text,
    "csv": parse_csv,
    "json": parse_json,
}


def kind_for(path: Path) -> DocumentKind | None:
    """The document kind for a file name, or None when the format is not supported."""
    return SUFFIXES.get(path.suffix.lower())


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_bytes(
    data: bytes, kind: DocumentKind, *, source: str, name: str = ""
) -> tuple[str | None, list[Block]]:
    """(title or None, blocks) of `data` read as `kind`; `LoadError` when unreadable."""
    parser: Parser = _PARSERS[kind]
    if name.lower().endswith(".tsv"):
        parser = lambda raw: parse_csv(raw, tab_separated=True)  # noqa: E731
    try:
        return parser(data)
    except EncryptedError as exc:
        raise LoadError(source, str(exc)) from None
    except NotTextError as exc:
        raise LoadError(source, f"{exc}; is the file really {kind}?") from None
    except MemoryError:
        raise LoadError(source, "too large to parse in memory") from None
    except Exception as exc:  # parsers raise many types on damaged input
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise LoadError(
            source,
            f"damaged or not a valid {kind.upper()} file "
            f"({type(exc).__name__}{': ' + detail if detail else ''})",
        ) from None


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
) -> Document:
    """Load one file. `source` defaults to the absolute path. Pass `data`/`mtime` when
    the bytes were already read (ingestion hashes them before deciding to parse)."""
    source = source or str(path.absolute())
    kind = kind_for(path)
    if kind is None:
        raise LoadError(source, f"unsupported file type {path.suffix or '(no suffix)'!r}")
    if data is None or mtime is None:
        data, mtime = _read(path, source, max_bytes)
    title, blocks = parse_bytes(data, kind, source=source, name=path.name)
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
