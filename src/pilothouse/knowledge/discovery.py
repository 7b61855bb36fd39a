"""Which files an ingestion covers: files, folders (walked, following links but never
round a loop) and glob patterns; and the scope each one covers, so that documents
deleted from disk are removed from the index."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pilothouse.knowledge.loaders import kind_for

_MAGIC = re.compile(r"[*?[]")


@dataclass(frozen=True, slots=True)
class Scope:
    """Sources an input spec covers: one file, everything under a folder, or what a
    glob pattern matches."""

    path: str
    pattern: re.Pattern[str] | None = None
    folder: bool = False

    def covers(self, source: str) -> bool:
        if self.pattern is not None:
            return self.pattern.fullmatch(source) is not None
        if self.folder:
            return source.startswith(self.path.rstrip(os.sep) + os.sep)
        return source == self.path


@dataclass(slots=True)
class Discovery:
    files: list[str] = field(default_factory=list)
    scopes: list[Scope] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    """(source, reason) for inputs that could not even be listed."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(source, reason) for files passed over on purpose (unsupported type)."""
    missing: list[str] = field(default_factory=list)
    """Named inputs that do not exist (anything indexed under them is removed)."""
    refused: list[tuple[str, str]] = field(default_factory=list)
    """(source, reason) for files outside the folders discovery is confined to (what was
    indexed from them is removed, not protected)."""


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex with glob's meaning: `*` and `?` stay within one path segment, `**/`
    crosses any number of folders."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append(f"(?:.*{re.escape(os.sep)})?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append(f"[^{re.escape(os.sep)}]*")
            i += 1
        elif pattern[i] == "?":
            out.append(f"[^{re.escape(os.sep)}]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape("["))
                i += 1
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def discover(
    specs: list[str], *, cwd: Path | None = None, confine: Sequence[str] = ()
) -> Discovery:
    """The files `specs` name. With `confine`, a file whose real path (every link
    resolved) is not under one of those folders is refused, not read."""
    base = cwd or Path.cwd()
    found = Discovery()
    seen: set[str] = set()
    roots = [os.path.realpath(root) for root in confine]

    def add(source: str, explicit: bool) -> None:
        if source in seen:
            return
        if roots and not _inside(os.path.realpath(source), roots):
            seen.add(source)
            found.refused.append(
                (
                    source,
                    "outside the copilot folder (through a symbolic link, '..' or an "
                    "absolute path); knowledge sources stay inside it",
                )
            )
            return
        if kind_for(Path(source)) is None:
            reason = f"unsupported file type {Path(source).suffix or '(no suffix)'!r}"
            (found.problems if explicit else found.skipped).append((source, reason))
            return
        seen.add(source)
        found.files.append(source)

    for spec in specs:
        expanded = os.path.expanduser(spec)
        absolute = os.path.abspath(os.path.join(base, expanded))
        if _MAGIC.search(expanded):
            found.scopes.append(Scope(absolute, pattern=glob_regex(absolute)))
            for match in sorted(glob.glob(absolute, recursive=True)):
                if os.path.isdir(match):
                    continue
                add(os.path.abspath(match), explicit=False)
            continue
        if os.path.isdir(absolute):
            found.scopes.append(Scope(absolute, folder=True))
            _walk(absolute, found, add)
        elif os.path.lexists(absolute):
            found.scopes.append(Scope(absolute))
            add(absolute, explicit=True)
        else:
            found.missing.append(absolute)
    return found


def _inside(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _walk(top: str, found: Discovery, add: Callable[[str, bool], None]) -> None:
    """Every file under `top`, hidden files and folders excepted. Links to folders are
    followed once; a link that leads back to a folder already on the way is reported
    as a loop instead of being walked forever."""

    def on_error(error: OSError) -> None:
        found.problems.append((str(error.filename or top), _reason(error)))

    visited = {os.path.realpath(top)}
    for folder, subfolders, files in os.walk(top, followlinks=True, onerror=on_error):
        keep = []
        for name in sorted(subfolders):
            if name.startswith("."):
                continue
            path = os.path.join(folder, name)
            real = os.path.realpath(path)
            if real in visited:
                found.problems.append(
                    (path, "symbolic link loop (leads back to a folder already walked); skipped")
                )
                continue
            visited.add(real)
            keep.append(name)
        subfolders[:] = keep
        for name in sorted(files):
            if not name.startswith("."):
                add(os.path.join(folder, name), False)


def _reason(error: OSError) -> str:
    if isinstance(error, PermissionError):
        return "permission denied; cannot list this folder"
    return f"cannot list: {error.strerror or error}"
