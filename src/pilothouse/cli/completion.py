"""Shell completion beyond command names: model ids, copilot folders and copilot names.

`pilothouse --install-completion` installs it for the current shell. Completion runs
on every Tab press, so nothing here may fail loudly or be slow: errors give no
candidates, and the database is read only when it already exists. Every command
module imports this one: what the candidates need is imported when they are asked for.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pilothouse.errors import PilothouseError

DEFINITION_FILE = "copilot.yaml"
"""`pilothouse.copilot.definition.DEFINITION_FILE`, named here without importing the
copilot package (tests/cli/test_startup.py checks that they agree)."""


def complete_model_id(incomplete: str) -> list[str]:
    """Known model ids, the default model, and `NAME:` for each configured provider."""
    from pilothouse.models.registry import KNOWN_MODELS
    from pilothouse.storage import load_settings

    ids = list(KNOWN_MODELS)
    try:
        config = load_settings()
    except PilothouseError:
        config = None
    if config is not None:
        ids.insert(0, config.default_model)
        ids += [f"{name}:" for name in config.providers]
    return [i for i in dict.fromkeys(ids) if i.startswith(incomplete)]


def copilot_folders(incomplete: str) -> list[str]:
    """Folders under the one `incomplete` points into: copilots (holding copilot.yaml)
    as they are, other folders with a trailing `/` to go on typing."""
    typed = Path(incomplete) if incomplete else Path()
    parent, stem = (
        (typed, "")
        if incomplete.endswith("/") or not incomplete
        else (
            typed.parent,
            typed.name,
        )
    )
    try:
        children = sorted(p for p in parent.iterdir() if p.is_dir())
    except OSError:
        return []
    found = []
    for child in children:
        if not child.name.startswith(stem) or child.name.startswith((".", "__")):
            continue
        shown = str(child) if str(parent) != "." or incomplete.startswith("./") else child.name
        found.append(shown if (child / DEFINITION_FILE).is_file() else shown + "/")
    return found


def complete_copilot_or_text(incomplete: str) -> list[str]:
    """The first word of `ask` may be a copilot folder (or the question: no candidates
    then, so the shell does not turn a question into a file name)."""
    return copilot_folders(incomplete) if not incomplete.startswith(("'", '"')) else []


def complete_copilot_name(incomplete: str) -> list[str]:
    """Copilot names seen in stored runs and in copilot folders under the current one."""
    from pilothouse.storage import load_settings

    names: list[str] = []
    try:
        config = load_settings()
        if config.database_path.exists():
            uri = f"file:{config.database_path}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=0.5)
            try:
                rows = conn.execute(
                    "SELECT DISTINCT copilot FROM runs WHERE copilot IS NOT NULL ORDER BY 1"
                ).fetchall()
            finally:
                conn.close()
            names += [str(r[0]) for r in rows]
    except (PilothouseError, sqlite3.Error):
        pass
    for folder in copilot_folders(""):
        if not folder.endswith("/"):
            names.append(_copilot_name(Path(folder)))
    return [n for n in dict.fromkeys(names) if n and n.startswith(incomplete)]


def _copilot_name(folder: Path) -> str:
    try:
        for line in (folder / DEFINITION_FILE).read_text(encoding="utf-8").splitlines():
            if line.startswith("name:"):
                return line.split(":", 1)[1].split("#")[0].strip().strip("'\"")
    except (OSError, UnicodeDecodeError):
        pass
    return folder.name
