"""Folders that `pilothouse init NAME` copies to start a new copilot.

Each template is a folder beside this module (`starter/`: a working copilot with a
small product FAQ as knowledge, a read-only tool and an approval-gated tool, and an
eval suite). Files are copied byte for byte, except that in UTF-8 text files the
placeholder `{{name}}` (exactly so, no spaces) is replaced by the copilot's name; the
JSON Schema of copilot.yaml is written beside it as `copilot.schema.json`.
Templates never use `{{name}}` for anything else; Jinja expressions in a template's
`.prompty` files are written with spaces (`{{ question }}`) and are left alone.

    from pilothouse.copilot.templates import copy_template
    copy_template(Path("demo"), name="demo")
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from pilothouse.copilot.definition import json_schema
from pilothouse.errors import ConfigError

__all__ = ["NAME_PLACEHOLDER", "TEMPLATES", "copy_template", "template_files", "valid_name"]

_PACKAGE = "pilothouse.copilot.templates"
NAME_PLACEHOLDER = "{{name}}"
SCHEMA_FILE = "copilot.schema.json"
TEMPLATES = ("starter",)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_TEXT_SUFFIXES = frozenset({".yaml", ".yml", ".md", ".prompty", ".py", ".txt", ".json", ".html"})
_SKIP = frozenset({"__pycache__", ".DS_Store"})


def valid_name(name: str) -> bool:
    """Whether `name` can be a copilot's name (lowercase letters, digits, - and _)."""
    return bool(_NAME.match(name))


def copy_template(target: Path, name: str, template: str = "starter") -> list[Path]:
    """Copy `template` into the new folder `target`, naming the copilot `name`; the
    files written. `target` must not exist yet, or be an empty folder."""
    if template not in TEMPLATES:
        raise ConfigError(f"no template {template!r}; the templates are: {', '.join(TEMPLATES)}")
    if not valid_name(name):
        raise ConfigError(
            f"{name!r} cannot be a copilot name: use 1-63 lowercase letters, digits, '-' "
            "or '_', starting with a letter or digit (for example: it-helpdesk)"
        )
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"{target} already exists and is not empty; choose another folder")
    written: list[Path] = []
    try:
        target.mkdir(parents=True, exist_ok=True)
        for relative, data in template_files(name, template).items():
            destination = target.joinpath(*relative.split("/"))
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(data)
            written.append(destination)
        schema = target / SCHEMA_FILE  # what copilot.yaml's yaml-language-server line names
        schema.write_text(json.dumps(json_schema(), indent=2) + "\n", encoding="utf-8")
        written.append(schema)
    except OSError as exc:
        raise ConfigError(f"cannot create the copilot in {target}: {exc}") from None
    return written


def template_files(name: str, template: str = "starter") -> dict[str, bytes]:
    """The files of `template` for a copilot named `name`, by relative path (POSIX),
    as `copy_template` writes them (copilot.schema.json aside)."""
    if template not in TEMPLATES:
        raise ConfigError(f"no template {template!r}; the templates are: {', '.join(TEMPLATES)}")
    found: dict[str, bytes] = {}
    _collect(files(_PACKAGE).joinpath(template), "", name, found)
    return found


def _collect(source: Traversable, prefix: str, name: str, found: dict[str, bytes]) -> None:
    for item in sorted(source.iterdir(), key=lambda entry: entry.name):
        if item.name in _SKIP or item.name.endswith(".pyc"):
            continue
        relative = prefix + item.name
        if item.is_dir():
            _collect(item, relative + "/", name, found)
            continue
        data = item.read_bytes()
        if Path(item.name).suffix in _TEXT_SUFFIXES:
            data = data.decode("utf-8").replace(NAME_PLACEHOLDER, name).encode("utf-8")
        found[relative] = data
