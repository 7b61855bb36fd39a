"""The code samples of README.md and docs/: extracted with their file, line, language
and marker, and the rules the docs-sample test applies to each (docs/cli.md, "Code
samples in the docs").

- ```python: run for real (one process per sample, the repository as working folder).
- ```console: a session: each `$ ` command (with its `\\` continuation lines) runs for
  real, in order, in one shell per page; the other lines are example output.
- ```bash (or sh, shell): every `pilothouse ...` command must parse against the real CLI (commands,
  options, arguments); other commands (make, export, vllm ...) are shown, not run.
- ```toml, ```yaml, ```json: must parse; config.toml samples load as settings,
  copilot.yaml samples (whole or a part) validate as a copilot definition, a routes
  file as routes, an eval suite as a suite, a `tools:` list entry by entry, a Prompt
  flow `flow.dag.yaml` (it has `nodes`) as a flow and a `# connections.yaml` sample as
  a flow's connection map; a YAML
  list (CI steps, say) is not a Pilothouse file and only parses.
- A fence with no language is not a sample (diagrams, example output).
- `<!-- sample: skip: WHY -->` on the line before a fence leaves that sample out, and
  says why (a command that downloads weights, ids that only exist on your machine).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^```(\S*)\s*$")
_SKIP = re.compile(r"^<!--\s*sample:\s*skip:\s*(.+?)\s*-->$")


@dataclass(frozen=True)
class Sample:
    file: Path
    line: int
    lang: str
    text: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def samples(page: Path) -> list[Sample]:
    found: list[Sample] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        start = index
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("```")), None)
        if end is None:
            raise AssertionError(f"{page}:{start + 1}: a code fence is never closed")
        before = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        marker = _SKIP.match(before.strip())
        if match.group(1):
            text = "\n".join(lines[start + 1 : end]) + "\n"
            found.append(
                Sample(page, start + 1, match.group(1), text, marker.group(1) if marker else None)
            )
        index = end + 1
    return found


def all_samples() -> list[Sample]:
    return [s for page in pages() for s in samples(page)]


def commands(text: str, *, prompt: bool) -> list[str]:
    """Command lines of a shell sample, continuation lines joined; with `prompt`, only
    lines after `$ ` (a console session), else every line that is not a comment."""
    result: list[str] = []
    current: str | None = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if current is not None:
            current += " " + line.strip().removesuffix("\\").rstrip()
            if not line.endswith("\\"):
                result.append(current)
                current = None
            continue
        if prompt:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        elif not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            current = line.removesuffix("\\").rstrip()
        else:
            result.append(line)
    if current is not None:
        result.append(current)
    return result
