"""How a passage's units read when an answer quotes them (copilot/quoted_answer.py).

A quoted answer is the handbook's own sentences, list items and table rows. Read as
they are stored they were not answers: on issue 20's follow-up sets the 1.5B's quotes
kept the source's Markdown (`**10 seconds**`, `*Reset?*`) and gave a table row as a
form ("Day: Saturday; Phone and portal: 09:00 to 13:00; IT Bar ...: Closed";
docs/local-model.md, "Follow-ups (eighth round)"). Here a unit loses its inline Markdown
(emphasis and code marks, a link's address: knowledge/documents.py `plain_inline`, what
a passage shown to a person loses too), a list item its bullet, and a row reads as a
line about its first cell:
"Saturday: phone and portal 09:00 to 13:00, IT Bar (walk-in, ...) closed." (a number
in the first cell keeps its column's name: "Floor 2: location ..."; a two-column row
is "name: value"). A passage cut from the middle of a Markdown table has no header
row: the header of another passage from the same place with as many cells is used
(`headers`), else the cells are given unnamed. A PDF page's running number ("Page 2 of
6", "- 3 -", on its own line) is page furniture, not the handbook's words: left out of
the units here, where a passage is read for a quote (its stored chunk, and so its
embedding, keeps it), and a sentence broken by it across two pages reads whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from pilothouse.copilot.passage_budget import ITEM, TABLE_RULE, Unit, split_units
from pilothouse.knowledge.documents import plain_inline

_SHORTEST = 3
"""Units of fewer words (a lone heading, "Status:") are not offered; a table row of two
words or more is ("Port: 443.")."""
_EMPTY = {"", "-", "–", "—"}
"""Table cells that say nothing."""
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_WORD = re.compile(r"[A-Za-z][a-z]+")
_PAGE_LINE = re.compile(
    r"^[ \t]*(?:page[ \t]+\d+(?:[ \t]*(?:of|/)[ \t]*\d+)?|\d+[ \t]*(?:of|/)[ \t]*\d+"
    r"|[-–—][ \t]*\d+[ \t]*[-–—])[ \t]*(?:\n|$)",
    re.IGNORECASE | re.MULTILINE,
)
"""A line that is only a page's number ("Page 2 of 6", "Page 4", "2 / 6", "- 3 -"),
with its line break: the lines either side join as one."""


def table_headers(passages: Iterable[str]) -> dict[int, list[str]]:
    """The header rows of the tables in `passages` by their number of cells (the
    first of each size), for rows of another passage cut from their header."""
    found: dict[int, list[str]] = {}
    for passage in map(_without_page_lines, passages):
        units = split_units(passage)
        headed = _headed_blocks(passage)
        for unit in units:
            if unit.header and unit.block in headed:
                found.setdefault(len(_cells(unit.text)), _cells(unit.text))
    return found


def readable_units(passage: str, headers: Mapping[int, Sequence[str]] | None = None) -> list[str]:
    """`passage`'s units as an answer may say them (see the module doc): whitespace
    made single spaces, emphasis and bullets removed, a table row as a line about its
    first cell (the header row itself is not one; a headerless table's header from
    `headers`, by its number of cells); units of fewer than `_SHORTEST` words left out,
    except rows; page number lines left out."""
    passage = _without_page_lines(passage)
    units = split_units(passage)
    headed = _headed_blocks(passage)
    out: list[str] = []
    header: list[str] = []
    for unit in units:
        if unit.header and unit.block in headed:
            header = _cells(unit.text)
            continue
        row = _is_row(unit, units)
        if row:
            cells = _cells(unit.text)
            named = header if unit.block in headed else list((headers or {}).get(len(cells), []))
            text = _row(cells, named)
        else:
            text = ITEM.sub("", unit.text)  # the spaces left are made single below
        text = " ".join(plain_inline(text).split())
        if len(text.split()) >= _SHORTEST or (row and len(text.split()) > 1):
            out.append(text)
    return out


def _without_page_lines(passage: str) -> str:
    """`passage` without its lines that are only a page's number (`_PAGE_LINE`)."""
    return _PAGE_LINE.sub("", passage)


def _headed_blocks(passage: str) -> set[int]:
    """The blocks (as split_units numbers them) whose first row is a table's header: a
    Markdown table's when its rule row follows it, a loader's table ("a | b" rows, no
    outer pipes) always. A passage cut from the middle of a Markdown table starts with
    a row of data, not its header."""
    headed: set[int] = set()
    for block, part in enumerate(re.split(r"\n\s*\n", passage.strip())):
        lines = [line for line in part.splitlines() if line.strip()]
        if not lines or not lines[0].lstrip().startswith("|"):
            headed.add(block)  # not a Markdown table: a loader's header, if a table
        elif len(lines) > 1 and TABLE_RULE.match(lines[1]):
            headed.add(block)
    return headed


def _is_row(unit: Unit, units: Sequence[Unit]) -> bool:
    return any(u.header and u.block == unit.block for u in units)


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def _row(cells: Sequence[str], header: Sequence[str]) -> str:
    """A row as a line about its first cell (see the module doc)."""
    cells = [" ".join(plain_inline(c).split()) for c in cells]
    subject, rest = cells[0], list(cells[1:])
    named = len(header) == len(cells)
    if named and _NUMBER.fullmatch(subject):
        subject = f"{plain_inline(header[0]).strip()} {subject}"
    if not named or len(cells) == 2:
        said = ", ".join(c for c in rest if c not in _EMPTY)
    else:
        said = ", ".join(
            f"{_lowered(plain_inline(name).strip())} {_lowered(cell)}"
            for name, cell in zip(header[1:], rest, strict=True)
            if cell not in _EMPTY
        )
    line = f"{subject}: {said}" if said else subject
    return line if line.endswith((".", "!", "?", ":")) else line + "."


def _lowered(text: str) -> str:
    """`text` with its first word in lower case where it is an ordinary capitalised
    word inside a sentence ("Beside the IT Bar", "Closed"), not a name ("Canon
    imageRUNNER", "Microsoft Authenticator", "SSL-VPN")."""
    words = text.split(" ")
    first = _WORD.fullmatch(words[0].rstrip(",;:"))
    if first is None:
        return text
    following = words[1].strip("(),;:") if len(words) > 1 else ""
    if following and following != following.lower():
        return text
    return text[0].lower() + text[1:]
