"""Plugins: named extensions found through `importlib.metadata` entry points.

Each extensible family (wire protocols, provider hosts, document loaders, connectors,
tool sources, ...) owns one `Registry`, defined in the layer that uses it. A package
extends a family by declaring entry points in the group `pilothouse.<family>`:

    [project.entry-points."pilothouse.loaders"]
    rtf = "acme_rtf:LOADER"

Pilothouse's own built-ins are declared the same way in its pyproject.toml, so the
extension point is exercised on every run.

A registry looks entry points up once per `sys.path` (so a package put on the path is
seen at once) and imports a plugin only when it is first asked for. A plugin that
fails to import, or whose object is not what the family expects, is recorded with
its name and error and does not break the others. Names are unique per family: a
third-party plugin cannot replace a built-in (it is reported and ignored), and two
third-party plugins that claim one name are both refused until one is uninstalled.
`register` adds a plugin in-process (tests, applications embedding Pilothouse); it
takes precedence over entry points.

See docs/plugins.md for how to write each kind.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import metadata
from typing import Generic, TypeVar

from pilothouse.errors import ConfigError

log = logging.getLogger(__name__)

GROUP_PREFIX = "pilothouse."
BUILTIN_DISTRIBUTION = "pilothouse"
REINSTALL_HINT = (
    "its installed metadata declares no built-in plugins; reinstall Pilothouse "
    "(`pip install -e .` in a checkout, or `pip install --force-reinstall pilothouse`)"
)

T = TypeVar("T")


class PluginError(ConfigError):
    """A plugin is unknown, failed to load, or its name is claimed twice."""


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """One plugin of a family and where it came from."""

    family: str
    name: str
    target: str
    """`module:attribute` of an entry point, or a description of a registered object."""
    distribution: str | None = None
    """The package that declared it (None for one registered in-process)."""
    version: str | None = None
    error: str | None = None
    """Why it cannot be used (import failure, wrong kind of object, name clash)."""

    @property
    def builtin(self) -> bool:
        return _normalize(self.distribution or "") == BUILTIN_DISTRIBUTION

    @property
    def origin(self) -> str:
        """Where it came from, for people: `pilothouse 0.1.0`, `acme-rtf 1.2`, ..."""
        if self.distribution is None:
            return "registered in-process"
        return f"{self.distribution} {self.version}" if self.version else self.distribution


@dataclass(frozen=True, slots=True)
class _Declared:
    info: PluginInfo
    entry_point: metadata.EntryPoint | None = None


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


@lru_cache(maxsize=8)
def _scan(path: tuple[str, ...]) -> dict[str, tuple[metadata.EntryPoint, ...]]:
    """Every `pilothouse.*` entry point on `path` (`sys.path` as a tuple: the cache key),
    by group. Distributions found twice on the path count once (the first wins)."""
    del path  # importlib.metadata reads sys.path itself; the argument keys the cache
    found = metadata.entry_points()
    groups = sorted(g for g in found.groups if g.startswith(GROUP_PREFIX))
    return {group: tuple(found.select(group=group)) for group in groups}


def declared_groups() -> list[str]:
    """The `pilothouse.*` entry-point groups installed packages declare, including
    families no registry has been created for yet."""
    return list(_scan(_path_key()))


def _describe(plugin: object) -> str:
    module = getattr(plugin, "__module__", None) or type(plugin).__module__
    name = getattr(plugin, "__qualname__", None) or type(plugin).__qualname__
    return f"{module}:{name}"


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Registry(Generic[T]):
    """The plugins of one family, e.g. `Registry("loaders", check=as_loader,
    kind="document loader")` reads the entry-point group `pilothouse.loaders`.

    `check(name, obj)` turns the loaded object into a `T` or raises `TypeError` or
    `ValueError` saying what is wrong with it. With `builtins=True` the family expects
    Pilothouse itself to declare entry points, and says how to repair an install
    whose metadata lacks them.
    """

    def __init__(
        self,
        family: str,
        *,
        check: Callable[[str, object], T],
        kind: str,
        builtins: bool = True,
    ) -> None:
        self.family = family
        self.group = GROUP_PREFIX + family
        self.kind = kind
        self._check = check
        self._builtins = builtins
        self._registered: dict[str, T] = {}
        self._version = 0
        self._loaded: dict[tuple[tuple[str, ...], str], T | PluginError] = {}
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"Registry({self.family!r})"

    # --- in-process registration ---------------------------------------------------

    def register(self, name: str, plugin: T) -> None:
        """Add `plugin` under `name` in this process; it wins over entry points."""
        with self._lock:
            self._registered[name] = self._check(name, plugin)
            self._version += 1

    def unregister(self, name: str) -> None:
        with self._lock:
            self._registered.pop(name, None)
            self._version += 1

    @contextmanager
    def registered(self, name: str, plugin: T) -> Iterator[T]:
        """`register` for the duration of a `with` block (tests)."""
        previous = self._registered.get(name)
        self.register(name, plugin)
        try:
            yield self._registered[name]
        finally:
            with self._lock:
                if previous is None:
                    self._registered.pop(name, None)
                else:
                    self._registered[name] = previous
                self._version += 1

    def state(self) -> tuple[object, ...]:
        """Changes whenever what the registry holds may have changed (the path, an
        in-process registration): a key for caches derived from it."""
        return (self._version, *_path_key())

    # --- lookup ----------------------------------------------------------------------

    def names(self) -> list[str]:
        """Every name of the family, usable or not (see `infos` for the state)."""
        return sorted({*self._declared(), *self._registered})

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._registered or name in self._declared())

    def get(self, name: str) -> T:
        """The plugin called `name`, imported on first use. Raises `PluginError` naming
        the known plugins (and the closest match) for an unknown name, or saying why a
        known one cannot be used."""
        with self._lock:
            if name in self._registered:
                return self._registered[name]
        declared = self._declared().get(name)
        if declared is None:
            raise self.unknown(name)
        result = self._load(declared)
        if isinstance(result, PluginError):
            raise result
        return result

    def find(self, name: str) -> T | None:
        """The plugin called `name`, or None when there is none; a plugin that exists
        but cannot be used still raises."""
        if name not in self:
            return None
        return self.get(name)

    def items(self) -> list[tuple[str, T]]:
        """Every usable plugin, imported; broken ones are logged and left out."""
        out: list[tuple[str, T]] = []
        for info in self.infos():
            if info.error is None:
                out.append((info.name, self.get(info.name)))
        return out

    def infos(self) -> list[PluginInfo]:
        """Every plugin of the family with where it came from, each one imported to
        report whether it can be used."""
        declared = self._declared()
        out: list[PluginInfo] = []
        for name in self.names():
            with self._lock:
                plugin = self._registered.get(name)
            if plugin is not None:
                out.append(PluginInfo(self.family, name, _describe(plugin)))
                continue
            entry = declared[name]
            result = self._load(entry)
            error = str(result) if isinstance(result, PluginError) else None
            out.append(replace(entry.info, error=error))
        out.extend(_family(self.family, self.group, _path_key()).ignored)
        return sorted(out, key=lambda info: (info.name, not info.builtin))

    # --- internals -------------------------------------------------------------------

    def _declared(self) -> dict[str, _Declared]:
        return _family(self.family, self.group, _path_key()).winners

    def _load(self, declared: _Declared) -> T | PluginError:
        info = declared.info
        key = (_path_key(), f"{info.name}\0{info.target}\0{info.distribution}")
        with self._lock:
            cached = self._loaded.get(key)
            if cached is not None:
                return cached
            result: T | PluginError
            if info.error is not None or declared.entry_point is None:
                result = PluginError(info.error or f"{self.kind} {info.name!r} is unusable")
            else:
                result = self._import(info, declared.entry_point)
            self._loaded[key] = result
            return result

    def _import(self, info: PluginInfo, entry_point: metadata.EntryPoint) -> T | PluginError:
        where = f"{self.kind} plugin {info.name!r} ({info.target}, from {info.origin})"
        try:
            obj = entry_point.load()
        except Exception as exc:  # a plugin may fail in any way; the rest must work
            log.warning("%s failed to load: %s", where, _short(exc))
            return PluginError(f"{where} failed to load: {_short(exc)}")
        try:
            return self._check(info.name, obj)
        except (TypeError, ValueError) as exc:
            log.warning("%s is not a valid %s: %s", where, self.kind, exc)
            return PluginError(f"{where} is not a valid {self.kind}: {exc}")

    def unknown(self, name: str, *, alternative: str = "") -> PluginError:
        """The error for a name no plugin has: the installed names, the closest one,
        how to add one (and `alternative`, another way the caller accepts)."""
        names = self.names()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(names) or "none"
        stale = ""
        if self._builtins and not _builtin_declared(self.group):
            stale = f". Pilothouse looks broken: {REINSTALL_HINT}"
        other = f"; or {alternative}" if alternative else ""
        return PluginError(
            f"unknown {self.kind} {name!r}{hint} (installed: {known}); a package adds one "
            f"with an entry point in the group {self.group!r} (see docs/plugins.md)"
            f"{other}{stale}"
        )


def _builtin_declared(group: str) -> bool:
    return any(_dist_name(ep) == BUILTIN_DISTRIBUTION for ep in _scan(_path_key()).get(group, ()))


def _dist_name(entry_point: metadata.EntryPoint) -> str | None:
    name, _ = _origin(entry_point)
    return _normalize(name) if name else None


def _origin(entry_point: metadata.EntryPoint) -> tuple[str | None, str | None]:
    """The (name, version) of the distribution declaring `entry_point`."""
    dist = getattr(entry_point, "dist", None)
    return _dist_facts(dist) if dist is not None else (None, None)


@lru_cache(maxsize=256)
def _dist_facts(dist: metadata.Distribution) -> tuple[str | None, str | None]:
    """A distribution's name and version, its METADATA parsed once: `dist.name` and
    `dist.version` parse the file on every access (3.11), which was most of the CPU
    `pilothouse models` spent (benchmarks/cli)."""
    meta = dist.metadata
    return meta["Name"], meta["Version"]


def _info(family: str, entry_point: metadata.EntryPoint) -> PluginInfo:
    name, version = _origin(entry_point)
    return PluginInfo(
        family=family,
        name=entry_point.name,
        target=entry_point.value,
        distribution=name,
        version=version,
    )


@dataclass(frozen=True, slots=True)
class _Family:
    winners: dict[str, _Declared]
    ignored: tuple[PluginInfo, ...]
    """Third-party plugins that claim a built-in's name."""


@lru_cache(maxsize=64)
def _family(family: str, group: str, path: tuple[str, ...]) -> _Family:
    by_name: dict[str, list[_Declared]] = {}
    for entry_point in _scan(path).get(group, ()):
        info = _info(family, entry_point)
        by_name.setdefault(entry_point.name, []).append(_Declared(info, entry_point))
    winners: dict[str, _Declared] = {}
    ignored: list[PluginInfo] = []
    for name, claims in by_name.items():
        if len(claims) == 1:
            winners[name] = claims[0]
            continue
        builtin = [c for c in claims if c.info.builtin]
        if builtin:
            winners[name] = builtin[0]
            for claim in claims:
                if not claim.info.builtin:
                    error = f"ignored: {name!r} is the name of a built-in {family} plugin"
                    log.warning("%s plugin %r from %s %s", family, name, claim.info.origin, error)
                    ignored.append(replace(claim.info, error=error))
            continue
        names = " and ".join(sorted(f"{c.info.origin} ({c.info.target})" for c in claims))
        error = f"{family} plugin {name!r} is claimed by {names}; uninstall one of them"
        winners[name] = _Declared(replace(claims[0].info, error=error))
        ignored.extend(replace(c.info, error=error) for c in claims[1:])
    return _Family(winners, tuple(ignored))


def _path_key() -> tuple[str, ...]:
    return (str(_GENERATION[0]), *sys.path)


_GENERATION = [0]


def refresh() -> None:
    """Look again for entry points (after installing a package into a folder already
    on `sys.path`, in this process)."""
    importlib.invalidate_caches()
    _GENERATION[0] += 1
