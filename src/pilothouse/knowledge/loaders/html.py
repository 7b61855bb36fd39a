"""HTML: the main content (no navigation, headers, footers or ads) through
trafilatura, as Markdown, then split into blocks like any Markdown."""

from __future__ import annotations

import trafilatura

from pilothouse.knowledge.documents import Block
from pilothouse.knowledge.loaders.markdown import markdown_blocks
from pilothouse.knowledge.loaders.text import decode, paragraphs


def parse_html(data: bytes) -> tuple[str | None, list[Block]]:
    html = decode(data)
    extracted = trafilatura.extract(
        html,
        output_format="markdown",
        include_tables=True,
        include_formatting=True,
        include_links=False,
        include_images=False,
        include_comments=False,
        favor_recall=True,
        deduplicate=False,
    )
    metadata = trafilatura.extract_metadata(html)
    title = metadata.title if metadata is not None and metadata.title else None
    if not extracted:
        # No main content found: fall back to trafilatura's plain text of the body.
        return title, paragraphs(trafilatura.baseline(html)[1] or "")
    heading_title, blocks = markdown_blocks(extracted)
    return title or heading_title, blocks
