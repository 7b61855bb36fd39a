"""A flow's `data.jsonl` as an eval suite for the imported copilot: each line with a
question (the chat input's column) and an expected answer (a column named `answer`,
`ground_truth`, `groundtruth`, `expected` or `reference`) becomes a case whose
`reference` is that answer, so the judged metrics (correctness, similarity) score the
copilot against what the flow's authors expected. Lines without both are counted,
not guessed."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

EXPECTED_COLUMNS = ("answer", "ground_truth", "groundtruth", "expected", "reference")


@dataclass(frozen=True)
class DataSuite:
    text: str | None
    """The suite's YAML, or None when no line could become a case."""
    cases: int
    skipped: int
    column: str | None
    """The column the references came from."""


def suite_from_rows(
    rows: Sequence[Mapping[str, Any]], question: str, name: str, source: str
) -> DataSuite:
    column = next((c for c in EXPECTED_COLUMNS if any(c in row for row in rows)), None)
    cases: list[dict[str, Any]] = []
    skipped = 0
    for number, row in enumerate(rows, 1):
        asked, expected = row.get(question), row.get(column) if column else None
        if not isinstance(asked, str) or not asked.strip() or expected in (None, ""):
            skipped += 1
            continue
        reference = expected if isinstance(expected, str) else yaml.safe_dump(expected).strip()
        cases.append({"id": f"line-{number}", "question": asked, "reference": reference})
    if not cases:
        return DataSuite(None, 0, skipped, column)
    suite = {
        "suite": re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "imported",
        "description": f"The lines of {source} with an expected answer ({column})",
        "cases": cases,
    }
    text = yaml.safe_dump(suite, sort_keys=False, allow_unicode=True, width=100)
    return DataSuite(text, len(cases), skipped, column)
