"""A Prompty file as a document: YAML front matter plus a template body.

`PromptyDocument.parse` splits the text at its front-matter fences (`---`, or `+++`
for generation C), parses the YAML safely, and records the file line of every key so
later errors can say `file:line: field: ...`. `PromptyDocument.dump` writes the
document back; `parse(dump(doc)) == doc` holds for every document, so a file
round-trips through load and dump without losing anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pilothouse.util.yaml_limits import compose_yaml

from .errors import PromptyError

FENCES = ("---", "+++")
MAX_FRONT_MATTER_CHARS = 1_000_000
_MAX_NODES = 100_000

FieldPath = tuple[str | int, ...]


def field_name(path: Sequence[str | int]) -> str:
    """`("inputs", 2, "kind")` -> `inputs[2].kind`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


@dataclass(frozen=True)
class Locator:
    """Where each front-matter field sits in the file, for error messages."""

    path: Path | None = None
    lines: Mapping[FieldPath, int] = field(default_factory=dict)
    """1-based file line of each field path (keys and list items)."""
    front_matter_line: int | None = None
    """1-based line of the opening fence; None when the file has no front matter."""

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.front_matter_line

    def error(
        self,
        path: Sequence[str | int],
        message: str,
        cls: type[PromptyError] = PromptyError,
    ) -> PromptyError:
        return cls(
            message,
            path=self.path,
            line=self.line_of(path),
            field=field_name(path) or None,
        )


@dataclass(frozen=True)
class PromptyDocument:
    """The two halves of a Prompty file, exactly as written (references unresolved)."""

    front_matter: dict[str, Any]
    body: str
    fence: str | None = "---"
    """The front-matter fence used (`---` or `+++`); None when the file has none."""
    body_line: int = field(default=1, compare=False)
    """1-based file line where the body starts."""
    locator: Locator = field(default_factory=Locator, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str, path: Path | str | None = None) -> PromptyDocument:
        """Split `text` into front matter and body; raise `PromptyError` with the line
        when the front matter is malformed."""
        file = Path(path) if path is not None else None
        text = text.removeprefix("\ufeff").replace("\r\n", "\n")
        lines = text.split("\n")
        # The front matter opens at the first line that is not blank, indented or not:
        # blank lines or indentation before the fence never turn it (and the secrets of
        # a `connection:`) into prompt text.
        start = next((i for i, line in enumerate(lines) if line.strip()), 0)
        first = lines[start].strip()
        if first not in FENCES:
            return cls({}, text, None, 1, Locator(file))
        indent = len(lines[start]) - len(lines[start].lstrip())
        close = next(
            (i for i in range(start + 1, len(lines)) if _closes(lines[i], first, indent)),
            None,
        )
        if close is None:
            raise PromptyError(
                f"the front matter opened with {first!r} on line {start + 1} is never "
                f"closed; add a line with {first!r} after it",
                path=file,
                line=start + 1,
            )
        yaml_text = "\n".join(lines[start + 1 : close])
        body = "\n".join(lines[close + 1 :])
        data, line_map = _load_yaml(yaml_text, file, first_line=start + 2)
        locator = Locator(file, line_map, start + 1)
        return cls(data, body, first, close + 2, locator)

    def dump(self) -> str:
        """The file text for this document."""
        if self.fence is None and not self.front_matter:
            return self.body
        fence = self.fence or "---"
        yaml_text = (
            yaml.safe_dump(
                self.front_matter,
                sort_keys=False,
                allow_unicode=True,
                default_flow_style=False,
                width=100,
            )
            if self.front_matter
            else ""
        )
        return f"{fence}\n{yaml_text}{fence}\n{self.body}"


def _closes(line: str, fence: str, indent: int) -> bool:
    """A closing fence: the opening one, indented no deeper than it was (a `---` inside
    an indented block scalar of the YAML does not close it)."""
    return line.strip() == fence and len(line) - len(line.lstrip()) <= indent


def _load_yaml(
    text: str, file: Path | None, *, first_line: int
) -> tuple[dict[str, Any], dict[FieldPath, int]]:
    if len(text) > MAX_FRONT_MATTER_CHARS:
        raise PromptyError(
            f"the front matter is larger than {MAX_FRONT_MATTER_CHARS} characters",
            path=file,
            line=first_line,
        )
    try:
        data, node = compose_yaml(text)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, file, first_line) from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise PromptyError(
            f"the front matter must be a YAML mapping of keys to values, not a "
            f"{type(data).__name__}",
            path=file,
            line=first_line,
        )
    lines: dict[FieldPath, int] = {}
    _map_lines(node, (), lines, file, first_line, [0])
    return data, lines


def _yaml_error(exc: yaml.YAMLError, file: Path | None, first_line: int) -> PromptyError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = first_line + mark.line if mark is not None else first_line
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    detail = f"{context}, {problem}" if context else str(problem)
    return PromptyError(
        f"the front matter is not valid YAML ({detail}); fix the YAML between the fences",
        path=file,
        line=line,
    )


def _map_lines(
    node: yaml.Node | None,
    path: FieldPath,
    out: dict[FieldPath, int],
    file: Path | None,
    first_line: int,
    budget: list[int],
) -> None:
    budget[0] += 1
    if budget[0] > _MAX_NODES:
        raise PromptyError(
            "the front matter has too many nodes (aliases expanding without bound?)",
            path=file,
            line=first_line,
        )
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = str(key_node.value)
            child = (*path, key)
            if key in seen and key != "<<":
                raise PromptyError(
                    f"the key {key!r} appears twice; keep one",
                    path=file,
                    line=first_line + key_node.start_mark.line,
                    field=field_name(child),
                )
            seen.add(key)
            out[child] = first_line + key_node.start_mark.line
            _map_lines(value_node, child, out, file, first_line, budget)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            out[child] = first_line + item.start_mark.line
            _map_lines(item, child, out, file, first_line, budget)
