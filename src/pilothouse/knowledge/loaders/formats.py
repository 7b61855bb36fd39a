"""The document formats the knowledge layer reads: `Loader` (one format: its file
suffixes and its parser) and `LOADERS`, the plugin family `pilothouse.loaders`.

The built-in formats (builtin.py) are declared as entry points in Pilothouse's
pyproject.toml; a package adds a format the same way (docs/plugins.md). A file is read
by the loader whose suffix it ends with (the longest suffix wins); where two loaders
claim one suffix, a built-in wins over a plugin, and between plugins the first by name
wins (a warning names both).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pilothouse.knowledge.documents import Block
from pilothouse.plugins import Registry

log = logging.getLogger(__name__)

Parser = Callable[[bytes], tuple[str | None, list[Block]]]
"""bytes -> (title or None, blocks in reading order)."""


class UnreadableDocumentError(ValueError):
    """Raised by a parser for a problem it recognises (encrypted, not text, ...): its
    message becomes the reason shown for the file, as it is."""


@dataclass(frozen=True, slots=True)
class Loader:
    """One document format.

    `kind` names the format in documents, search results and messages (`pdf`, `rtf`);
    `suffixes` are the file-name endings it reads, with the dot (`.rtf`, `.tar.gz`);
    `parse(data)` returns the title (or None) and the blocks in reading order, and
    raises on bytes it cannot read: `UnreadableDocumentError` with a reason it can
    name, anything else for damaged input (reported as "damaged or not a valid ...").
    Import heavy parsing libraries inside `parse`, so listing formats stays cheap.
    """

    kind: str
    suffixes: tuple[str, ...]
    parse: Parser
    description: str = ""


def as_loader(name: str, obj: object) -> Loader:
    if not isinstance(obj, Loader):
        raise TypeError(f"expected a pilothouse.knowledge.loaders.Loader, got {type(obj).__name__}")
    if not obj.kind or not obj.suffixes:
        raise ValueError("a loader needs a kind and at least one suffix")
    bad = [s for s in obj.suffixes if not s.startswith(".") or s != s.lower()]
    if bad:
        raise ValueError(f"suffixes must be lower-case and start with a dot: {bad}")
    if not callable(obj.parse):
        raise TypeError("parse must be callable: bytes -> (title, blocks)")
    return obj


LOADERS: Registry[Loader] = Registry("loaders", check=as_loader, kind="document loader")
"""Document loaders by name (`pdf`, `markdown`, ...), from `pilothouse.loaders`."""


def suffix_table() -> dict[str, Loader]:
    """Every suffix any usable loader reads, with the loader that reads it."""
    return dict(_suffix_table(LOADERS.state()))


@lru_cache(maxsize=4)
def _suffix_table(state: tuple[object, ...]) -> dict[str, Loader]:
    del state  # the cache key
    table: dict[str, Loader] = {}
    owners: dict[str, str] = {}
    infos = {info.name: info for info in LOADERS.infos() if info.error is None}
    order = sorted(infos, key=lambda name: (not infos[name].builtin, name))
    for name in order:
        loader = LOADERS.get(name)
        for suffix in loader.suffixes:
            if suffix in table:
                if owners[suffix] != name:
                    log.warning(
                        "document loader %r also claims %s, which %r reads; ignored there",
                        name,
                        suffix,
                        owners[suffix],
                    )
                continue
            table[suffix] = loader
            owners[suffix] = name
    return table


def loader_for(path: Path) -> Loader | None:
    """The loader for a file name (longest matching suffix), or None."""
    lowered = path.name.lower()
    table = suffix_table()
    for suffix in _longest_first(LOADERS.state()):
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return table[suffix]
    return None


@lru_cache(maxsize=4)
def _longest_first(state: tuple[object, ...]) -> tuple[str, ...]:
    return tuple(sorted(_suffix_table(state), key=len, reverse=True))
