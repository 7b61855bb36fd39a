"""Unpacking an uploaded copilot folder (a zip archive, or a set of files whose names
carry their relative paths) into a fresh folder, refusing anything unsafe.

Refused, never "cleaned up": absolute paths, drive letters, `..` and empty path
components, NUL and control characters, symbolic-link entries, encrypted entries,
duplicate names, and archives or files over the limits. Sizes are counted while
reading, so an archive that lies in its headers (a zip bomb) is cut off at the limit.
Files are created with O_EXCL|O_NOFOLLOW inside a folder this module made, so nothing
is ever written outside it.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

CHUNK = 64 * 1024
_JUNK_PREFIXES = ("__MACOSX/",)
_JUNK_NAMES = frozenset({".DS_Store", "Thumbs.db"})
_WRAPPING = 4  # folders above copilot.yaml an archive may wrap it in


@dataclass(frozen=True, slots=True)
class UploadLimits:
    """Limits on one copilot upload (uncompressed sizes)."""

    max_total_bytes: int = 25 * 2**20
    max_file_bytes: int = 10 * 2**20
    max_files: int = 500
    max_depth: int = 16
    max_archive_bytes: int = 25 * 2**20


class UnsafeUploadError(Exception):
    """An entry or file name that could escape the folder, or a refused entry type."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name!r}: {reason}")
        self.name = name
        self.reason = reason


class UploadTooLargeError(Exception):
    """The upload is over one of the limits."""


class BadUploadError(Exception):
    """The upload cannot be read (not a zip, damaged, empty, ...)."""


def safe_relative_path(name: str, *, max_depth: int = 16) -> PurePosixPath:
    """The relative path an uploaded name stands for, or UnsafeUploadError."""
    if not name:
        raise UnsafeUploadError(name, "empty file name")
    if any(ord(ch) < 32 or ch == "\x7f" for ch in name):
        raise UnsafeUploadError(name, "control characters in the name")
    if "\\" in name:
        raise UnsafeUploadError(name, "backslashes are not allowed; use / between folders")
    if name.startswith("/"):
        raise UnsafeUploadError(name, "absolute paths are not allowed")
    parts = [p for p in name.split("/") if p not in ("", ".")] if "/" in name else [name]
    if not parts:
        raise UnsafeUploadError(name, "no file name")
    if ":" in parts[0] and len(parts[0]) == 2:
        raise UnsafeUploadError(name, "drive letters are not allowed")
    for part in parts:
        if part == "..":
            raise UnsafeUploadError(name, "'..' would leave the copilot folder")
        if part in (".",):
            raise UnsafeUploadError(name, "'.' is not a file name")
        if len(part.encode("utf-8", "surrogateescape")) > 255:
            raise UnsafeUploadError(name, "a path component is longer than 255 bytes")
    if len(parts) > max_depth:
        raise UnsafeUploadError(name, f"nested deeper than {max_depth} folders")
    return PurePosixPath(*parts)


@dataclass(frozen=True, slots=True)
class Entry:
    """One file to write: its relative path and a way to read it."""

    path: PurePosixPath
    reader: BinaryIO


def _is_junk(path: PurePosixPath) -> bool:
    text = str(path) + "/"
    return path.name in _JUNK_NAMES or text.startswith(_JUNK_PREFIXES)


def strip_common_folder(paths: list[PurePosixPath], marker: str) -> int:
    """How many leading folders to drop: those above `marker` (copilot.yaml) when it is
    not at the top and every path lies under the folder that holds it (an archive of
    `helpdesk/` or of `examples/helpdesk/`); else 0."""
    if not paths or any(p == PurePosixPath(marker) for p in paths):
        return 0
    markers = [p for p in paths if p.name == marker]
    if not markers:
        return 0
    prefix = min(markers, key=lambda p: len(p.parts)).parts[:-1]
    depth = len(prefix)
    if all(p.parts[:depth] == prefix and len(p.parts) > depth for p in paths):
        return depth
    return 0


def write_entries(entries: Iterable[Entry], dest: Path, limits: UploadLimits) -> list[str]:
    """Write `entries` under `dest` (an existing, empty folder this process made);
    returns the relative paths written. Counts bytes while copying."""
    written: list[str] = []
    seen: set[str] = set()
    total = 0
    root = dest.resolve()
    for entry in entries:
        key = str(entry.path)
        if key.casefold() in seen:
            raise UnsafeUploadError(key, "the same file name appears twice")
        seen.add(key.casefold())
        if len(seen) > limits.max_files:
            raise UploadTooLargeError(f"more than {limits.max_files} files in one copilot upload")
        target = root.joinpath(*entry.path.parts)
        if not target.resolve().is_relative_to(root):  # belt and braces
            raise UnsafeUploadError(key, "would be written outside the copilot folder")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UnsafeUploadError(key, "a folder in its path clashes with a file") from None
        if target.parent.is_symlink() or not target.parent.resolve().is_relative_to(root):
            raise UnsafeUploadError(key, "would be written through a link")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(target, flags, 0o644)
        except FileExistsError:
            raise UnsafeUploadError(key, "clashes with a folder or file of the same name") from None
        except IsADirectoryError:
            raise UnsafeUploadError(key, "clashes with a folder of the same name") from None
        size = 0
        with os.fdopen(fd, "wb") as out:
            for block in _blocks(entry.reader):
                size += len(block)
                total += len(block)
                if size > limits.max_file_bytes:
                    raise UploadTooLargeError(
                        f"{key} is over the {_mib(limits.max_file_bytes)} per-file limit"
                    )
                if total > limits.max_total_bytes:
                    raise UploadTooLargeError(
                        f"the copilot upload is over the {_mib(limits.max_total_bytes)} limit "
                        "(uncompressed); keep large documents out of the folder and upload "
                        "them to the knowledge base instead"
                    )
                out.write(block)
        written.append(key)
    if not written:
        raise BadUploadError("the upload holds no files")
    return written


def _blocks(reader: BinaryIO) -> Iterator[bytes]:
    while True:
        block = reader.read(CHUNK)
        if not block:
            return
        yield block


def _mib(size: int) -> str:
    return f"{size / 2**20:g} MiB"


def unpack_zip(archive: BinaryIO, dest: Path, limits: UploadLimits, marker: str) -> list[str]:
    """Unpack a zip archive of a copilot folder into `dest` (see module docstring)."""
    try:
        archive.seek(0, os.SEEK_END)
        size = archive.tell()
        archive.seek(0)
    except OSError as exc:
        raise BadUploadError(f"cannot read the archive: {exc}") from None
    if size > limits.max_archive_bytes:
        raise UploadTooLargeError(f"the archive is over the {_mib(limits.max_archive_bytes)} limit")
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            if len(infos) > limits.max_files * 2:
                raise UploadTooLargeError(f"more than {limits.max_files} entries in the archive")
            chosen: list[tuple[PurePosixPath, zipfile.ZipInfo]] = []
            declared = 0
            for info in infos:
                kind = stat.S_IFMT(info.external_attr >> 16)
                if kind == stat.S_IFLNK:
                    raise UnsafeUploadError(info.filename, "symbolic links are not allowed")
                if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                    raise UnsafeUploadError(info.filename, "only files and folders are allowed")
                path = safe_relative_path(info.filename, max_depth=limits.max_depth + _WRAPPING)
                if info.is_dir() or _is_junk(path):
                    continue
                if info.flag_bits & 0x1:
                    raise UnsafeUploadError(info.filename, "encrypted entries are not supported")
                declared += info.file_size
                if info.file_size > limits.max_file_bytes:
                    raise UploadTooLargeError(
                        f"{info.filename} is over the {_mib(limits.max_file_bytes)} per-file limit"
                    )
                if declared > limits.max_total_bytes:
                    raise UploadTooLargeError(
                        f"the archive unpacks to more than {_mib(limits.max_total_bytes)}"
                    )
                chosen.append((path, info))
            drop = strip_common_folder([p for p, _ in chosen], marker)

            def entries() -> Iterator[Entry]:
                for path, info in chosen:
                    relative = PurePosixPath(*path.parts[drop:])
                    if len(relative.parts) > limits.max_depth:
                        raise UnsafeUploadError(
                            info.filename, f"nested deeper than {limits.max_depth} folders"
                        )
                    with zf.open(info) as reader:
                        yield Entry(relative, reader)  # type: ignore[arg-type]

            return write_entries(entries(), dest, limits)
    except zipfile.BadZipFile as exc:
        raise BadUploadError(f"not a readable zip archive: {exc}") from None
    except (zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError) as exc:
        raise BadUploadError(f"the archive cannot be unpacked: {exc}") from None


def write_files(
    files: Iterable[tuple[str, BinaryIO]], dest: Path, limits: UploadLimits, marker: str
) -> list[str]:
    """Write uploaded files, named by their paths relative to the copilot folder."""
    items = [
        (safe_relative_path(name, max_depth=limits.max_depth + _WRAPPING), r) for name, r in files
    ]
    items = [(p, r) for p, r in items if not _is_junk(p)]
    if len(items) > limits.max_files:
        raise UploadTooLargeError(f"more than {limits.max_files} files in one copilot upload")
    drop = strip_common_folder([p for p, _ in items], marker)
    entries = []
    for path, reader in items:
        relative = PurePosixPath(*path.parts[drop:])
        if len(relative.parts) > limits.max_depth:
            raise UnsafeUploadError(str(path), f"nested deeper than {limits.max_depth} folders")
        entries.append(Entry(relative, reader))
    return write_entries(entries, dest, limits)
