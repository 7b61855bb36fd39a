"""Putting the management API's folders right after the server was killed mid-upload.

An upload is written in steps (a temporary file, the previous version moved aside,
the new file moved in, the index committed, the previous version dropped); a copilot
update likewise (the old folder moved aside, the new one moved in, opened, the old one
dropped). A crash between two steps leaves files the index or the served copilots do
not match. At start-up, before any request, `recover` makes them match again:

knowledge uploads (`<data dir>/knowledge/uploads/<base>/`, per knowledge base):
- an unfinished temporary file (`.NAME.xxxxxxxx.part`) is removed;
- a previous version moved aside (`.NAME.xxxxxxxx.previous`) goes back in place when
  the index still holds its content (the new version was never committed), else it is
  removed (the new version was);
- a file the index does not know (its upload was never committed, or its document was
  deleted and the file not yet) is removed.

copilot uploads (`<data dir>/copilots/.staging/`):
- a copilot folder moved aside by an update that never answered (`<id>-previous`) goes
  back in place: the update is rolled back, as its client was never told it worked;
- every other staging folder (an upload being unpacked or checked) is removed.

Each change is logged once on this module's logger.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pilothouse.copilot.definition import load_definition
from pilothouse.errors import PilothouseError
from pilothouse.knowledge.base import KnowledgeBase
from pilothouse.knowledge.loaders import content_hash

log = logging.getLogger(__name__)

_PART = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{8}\.part$")
_PREVIOUS = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{8}\.previous$")
PREVIOUS_SUFFIX = "-previous"


def recover_uploads(folder: Path, kb: KnowledgeBase) -> list[str]:
    """Make the uploaded files in `folder` match the knowledge base `kb`; returns what
    was done, one line each."""
    if not folder.is_dir():
        return []
    indexed = {row.source: row.content_hash for row in kb.documents()}
    done: list[str] = []
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()]
    for path in files:
        if _PART.match(path.name):
            path.unlink(missing_ok=True)
            done.append(f"removed the unfinished upload {path}")
    for path in files:
        match = _PREVIOUS.match(path.name)
        if match is None:
            continue
        target = path.with_name(match["name"])
        held = indexed.get(str(target.absolute()))
        if held is not None and held == content_hash(path.read_bytes()):
            os.replace(path, target)
            done.append(f"put back {target}: its new version never reached the index")
        else:
            path.unlink(missing_ok=True)
            done.append(f"removed the previous version of {target}")
    for path in files:
        if path.name.startswith(".") or not path.exists():
            continue
        if str(path.absolute()) not in indexed:
            path.unlink()
            done.append(f"removed {path}: not in the index (its upload never finished)")
    return done


def recover_staging(staging: Path, copilots: Path) -> list[str]:
    """Roll back copilot updates that never answered and drop unfinished uploads in
    `staging` (the copilots folder's `.staging`); returns what was done."""
    if not staging.is_dir():
        return []
    done: list[str] = []
    for path in sorted(staging.iterdir()):
        if path.name.endswith(PREVIOUS_SUFFIX) and path.is_dir() and not path.is_symlink():
            restored = _restore(path, copilots)
            if restored is not None:
                done.append(restored)
                continue
        _remove(path)
        done.append(f"removed the unfinished upload {path}")
    return done


def _restore(previous: Path, copilots: Path) -> str | None:
    try:
        definition, _ = load_definition(previous, uploaded=True)
    except PilothouseError:
        return None
    final = copilots / definition.name
    if final.exists():
        _remove(final)
    os.rename(previous, final)
    return f"rolled back copilot {definition.name}: its update never finished"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def logged(what: str, step: Callable[..., list[str]], *args: Any) -> None:
    """Run a recovery step `step(*args)`; log what it did, or why it could not run."""
    try:
        for line in step(*args):
            log.warning("recovery: %s", line)
    except (OSError, PilothouseError) as exc:
        log.error("recovery of %s failed: %s", what, exc)
