"""`${env:NAME}` and `${file:relative/path}` references in front-matter values.

A reference is a whole string value: `api_key: ${env:OPENAI_API_KEY}`,
`tools: ${file:tools.json}`. Text around a reference is not a reference.

- `${env:NAME}`: the environment variable. `${env:NAME:default}` gives `default` when it
  is unset. When it is unset and there is no default, generation A keeps the literal
  text (as Prompt flow did); generations B and C fail with a clear error.
- `${file:path}`: the file's content, relative to the Prompty's folder; `.json` is
  parsed as JSON, `.yaml`/`.yml` as YAML, anything else is read as text. Absolute
  paths, `..` segments and symlinks that lead out of the Prompty's folder are refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import yaml

from pilothouse.util.yaml_limits import load_yaml

from .errors import PromptyReferenceError

MAX_FILE_BYTES = 10_000_000
_MAX_NODES = 100_000

_REFERENCE = re.compile(r"^\$\{(?P<scheme>env|file):(?P<body>[^{}]*)\}$", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_reference(value: object) -> tuple[str, str] | None:
    """`("env", "NAME:default")` or `("file", "path")` when `value` is a reference."""
    if not isinstance(value, str):
        return None
    match = _REFERENCE.match(value.strip())
    if match is None:
        return None
    return match["scheme"].lower(), match["body"]


def resolve_env_value(value: str, environ: Mapping[str, str], *, keep_unset: bool) -> str:
    """`value` with its `${env:...}` reference replaced; other strings unchanged."""
    ref = parse_reference(value)
    if ref is None or ref[0] != "env":
        return value
    name, sep, default = ref[1].partition(":")
    name = name.strip()
    if not _ENV_NAME.match(name):
        raise PromptyReferenceError(
            f"{value!r} does not name an environment variable; write ${{env:NAME}} or "
            f"${{env:NAME:default}}"
        )
    if name in environ:
        return environ[name]
    if sep:
        return default
    if keep_unset:
        return value
    raise PromptyReferenceError(
        f"the environment variable {name} is not set; set it, or give a default with "
        f"${{env:{name}:default}}"
    )


def safe_path(reference: str, base_dir: Path) -> Path:
    """The file `reference` names inside `base_dir`, refusing anything that could lead
    out of it: absolute paths, `..` segments, and symlinks resolving outside."""
    text = reference.strip()
    if not text:
        raise PromptyReferenceError("the file reference is empty; write ${file:relative/path}")
    if (
        PurePosixPath(text).is_absolute()
        or PureWindowsPath(text).is_absolute()
        or PureWindowsPath(text).drive
        or text.startswith("~")
    ):
        raise PromptyReferenceError(
            f"the file reference {text!r} is absolute; file references must be relative "
            f"to the Prompty's folder"
        )
    parts = PurePosixPath(text.replace("\\", "/")).parts
    if ".." in parts:
        raise PromptyReferenceError(
            f"the file reference {text!r} goes up with '..'; file references must stay "
            f"inside the Prompty's folder"
        )
    root = base_dir.resolve()
    candidate = root.joinpath(*parts)
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root):
        raise PromptyReferenceError(
            f"the file reference {text!r} is a symlink that leads outside the Prompty's "
            f"folder ({root}); copy the file into the folder instead"
        )
    if not resolved.is_file():
        raise PromptyReferenceError(f"the file {text!r} does not exist in {root}")
    return resolved


def read_file_reference(reference: str, base_dir: Path) -> Any:
    """The content of `${file:reference}`: JSON and YAML parsed, other files as text."""
    path = safe_path(reference, base_dir)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise PromptyReferenceError(
            f"the file {reference!r} is {size} bytes; referenced files may be at most "
            f"{MAX_FILE_BYTES} bytes"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PromptyReferenceError(f"the file {reference!r} is not UTF-8 text") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return json.loads(text)
        if suffix in (".yaml", ".yml"):
            return load_yaml(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise PromptyReferenceError(f"the file {reference!r} could not be parsed: {exc}") from None
    return text


class ReferenceWalker:
    """Resolves references through a parsed front matter, reporting errors with the
    field path so the caller can add the line."""

    def __init__(
        self,
        on_error: Callable[[tuple[str | int, ...], PromptyReferenceError], Exception],
    ) -> None:
        self._on_error = on_error
        self._nodes = 0
        self.from_env: set[tuple[str | int, ...]] = set()
        """The field paths whose value came from an `${env:}` reference (text that a
        numeric or boolean field may read as its number or boolean)."""

    def _count(self, path: tuple[str | int, ...]) -> None:
        self._nodes += 1
        if self._nodes > _MAX_NODES:
            raise self._on_error(
                path, PromptyReferenceError("the front matter is too large to resolve")
            )

    def files(self, value: Any, base_dir: Path, path: tuple[str | int, ...] = ()) -> Any:
        """Replace every `${file:...}` in the tree (file contents are not searched)."""
        self._count(path)
        ref = parse_reference(value)
        if ref is not None and ref[0] == "file":
            try:
                return read_file_reference(ref[1], base_dir)
            except PromptyReferenceError as exc:
                raise self._on_error(path, exc) from None
        if isinstance(value, dict):
            return {k: self.files(v, base_dir, (*path, str(k))) for k, v in value.items()}
        if isinstance(value, list):
            return [self.files(v, base_dir, (*path, i)) for i, v in enumerate(value)]
        return value

    def env(
        self,
        value: Any,
        environ: Mapping[str, str],
        *,
        keep_unset: bool,
        skip: Callable[[tuple[str | int, ...]], bool],
        path: tuple[str | int, ...] = (),
    ) -> Any:
        """Replace every `${env:...}` in the tree except under paths `skip` accepts."""
        self._count(path)
        if path and skip(path):
            return value
        if isinstance(value, str):
            try:
                resolved = resolve_env_value(value, environ, keep_unset=keep_unset)
            except PromptyReferenceError as exc:
                raise self._on_error(path, exc) from None
            if resolved is not value:
                self.from_env.add(path)
            return resolved
        if isinstance(value, dict):
            return {
                k: self.env(v, environ, keep_unset=keep_unset, skip=skip, path=(*path, str(k)))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [
                self.env(v, environ, keep_unset=keep_unset, skip=skip, path=(*path, i))
                for i, v in enumerate(value)
            ]
        return value
