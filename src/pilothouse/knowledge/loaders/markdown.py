"""Markdown (CommonMark with tables) through markdown-it-py. Block text is the source
lines of each top-level block, so nothing is rewritten."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

from pilothouse.knowledge.documents import Block, BlockKind
from pilothouse.knowledge.loaders.text import decode

_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n(?:---|\.\.\.)\n", re.DOTALL)
_FRONT_TITLE = re.compile(r"^title:\s*[\"']?(.+?)[\"']?\s*$", re.MULTILINE)
_KINDS: dict[str, BlockKind] = {
    "paragraph_open": "paragraph",
    "bullet_list_open": "list",
    "ordered_list_open": "list",
    "table_open": "table",
    "fence": "code",
    "code_block": "code",
    "blockquote_open": "paragraph",
    "html_block": "paragraph",
}


def _plain(inline: Token) -> str:
    """A heading's text without Markdown markup or a trailing permalink sign (the
    pilcrow that Sphinx and others append to headings)."""
    pieces = [
        child.content
        for child in inline.children or []
        if child.type in ("text", "code_inline", "html_inline")
    ]
    text = " ".join("".join(pieces).split()) if pieces else inline.content.strip()
    return text.rstrip("¶#").strip()


def markdown_blocks(text: str) -> tuple[str | None, list[Block]]:
    """(title from front matter or the first level-1 heading, blocks)."""
    title: str | None = None
    match = _FRONT_MATTER.match(text)
    if match:
        found = _FRONT_TITLE.search(match.group(1))
        title = found.group(1) if found else None
        text = text[match.end() :]
    lines = text.split("\n")
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    blocks: list[Block] = []
    for index, token in enumerate(tokens):
        if token.level != 0 or token.map is None:
            continue
        if token.type == "heading_open":
            heading = _plain(tokens[index + 1])
            if heading:
                level = int(token.tag[1:])
                blocks.append(Block("heading", heading, level=level))
                if title is None and level == 1:
                    title = heading
            continue
        kind = _KINDS.get(token.type)
        if kind is None:
            continue
        start, end = token.map
        body = "\n".join(lines[start:end]).strip()
        if body:
            blocks.append(Block(kind, body))
    return title, blocks


def parse_markdown(data: bytes) -> tuple[str | None, list[Block]]:
    return markdown_blocks(decode(data))
