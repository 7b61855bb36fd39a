"""An HTML element tree turned into structural blocks: headings with their levels,
paragraphs, lists, tables and code, in reading order.

Works on the markup that documentation generators actually emit (DocBook XSL,
Sphinx, MkDocs, Javadoc, hand-written pages) rather than on a text extraction:
- `h1`..`h6` are headings, except inside an admonition box (a DocBook
  `div.note > h3.title`, a Sphinx or MkDocs `p.admonition-title`), whose title
  ("Note", "Warning") becomes a prefix of the box's first paragraph, so the box
  stays part of its section;
- `pre` is code, kept line by line as written, never re-read as markup (a psql
  result underline `-----` cannot turn the line above it into a heading);
- lists become `- item` lines, tables `a | b` rows, definition lists a paragraph
  per term followed by its description;
- navigation, permalinks, scripts and hidden elements are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from pilothouse.knowledge.documents import Block, BlockKind

Element: TypeAlias = Any  # lxml.html.HtmlElement (lxml ships no type hints)

HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SKIP_TAGS = _names(
    "script style noscript template svg nav form button iframe object canvas select "
    "input textarea head title meta link math"
)
_BLOCK_TAGS = _names(
    "p pre ul ol dl table blockquote div section article main body header footer aside "
    "figure figcaption details summary center address fieldset h1 h2 h3 h4 h5 h6 hr "
    "li dt dd tr td th tbody thead tfoot caption"
)
# Class names (and ids) of page furniture in common documentation generators.
BOILERPLATE = _names(
    "navheader navfooter sphinxsidebar sphinxsidebarwrapper related breadcrumb breadcrumbs "
    "wy-breadcrumbs wy-nav-side rst-versions headerlink skip-link skiplink topnav bottomnav "
    "subnav navbar navigation sidebar footer md-sidebar md-header md-footer md-search md-tabs "
    "md-source md-nav linenos linenodiv visually-hidden sr-only screen-reader-text "
    "cookie-banner cookie-notice cookies"
)
_ADMONITIONS = _names(
    "note warning tip caution important admonition hint attention danger error seealso "
    "callout notice"
)
_ADMONITION_TITLES = frozenset(["admonition-title", "title", "callout-title"])
# A list whose items hold headings, sections or tables is page structure (Javadoc's
# member details are list items), not a list of short items.
_STRUCTURE = ".//h1|.//h2|.//h3|.//h4|.//h5|.//h6|.//section|.//table"
_HIDDEN_ROLES = frozenset(["navigation", "banner", "contentinfo", "search", "complementary"])


def classes(element: Element) -> set[str]:
    return {c.lower() for c in (element.get("class") or "").split()}


def clean(text: str) -> str:
    """One line of readable text: whitespace collapsed, permalink signs dropped."""
    return " ".join(text.replace("¶", " ").split())


def is_furniture(element: Element, *, drop: frozenset[str] = BOILERPLATE) -> bool:
    """Navigation, permalinks, hidden or scripted elements: never content."""
    tag = element.tag
    if not isinstance(tag, str) or tag.lower() in _SKIP_TAGS:
        return True
    if element.get("hidden") is not None or element.get("aria-hidden") == "true":
        return True
    if (element.get("role") or "").lower() in _HIDDEN_ROLES:
        return True
    style = (element.get("style") or "").replace(" ", "").lower()
    if "display:none" in style:
        return True
    names = classes(element)
    names.add((element.get("id") or "").lower())
    if names & drop:
        return True
    lowered = tag.lower()
    if lowered == "footer":
        return True
    if lowered == "header":  # a page banner, unless it holds the article's heading
        return not any(True for _ in element.iter(*HEADINGS))
    if lowered == "aside":
        return not (names & _ADMONITIONS)
    return False


def _is_admonition(element: Element) -> bool:
    names = classes(element)
    return element.tag in ("div", "aside", "details", "section") and bool(names & _ADMONITIONS)


def _has_blocks(element: Element) -> bool:
    return any(isinstance(e.tag, str) and e.tag in _BLOCK_TAGS for e in element.iterdescendants())


class BlockWalker:
    """Collects blocks from one content root. `skip` decides what is furniture."""

    def __init__(self, skip: Callable[[Element], bool] = is_furniture):
        self.skip = skip
        self.blocks: list[Block] = []
        self._inline: list[str] = []
        self._label: str | None = None
        self._admonition_depth = 0

    def text_of(self, element: Element) -> str:
        """The element's text without furniture (permalinks, hidden spans)."""
        parts: list[str] = []

        def visit(node: Element) -> None:
            if node.text:
                parts.append(node.text)
            for child in node:
                if not self.skip(child):
                    if child.tag == "br":
                        parts.append(" ")
                    visit(child)
                if child.tail:
                    parts.append(child.tail)

        visit(element)
        return "".join(parts)

    def walk(self, root: Element) -> list[Block]:
        self._container(root)
        self._flush()
        return self.blocks

    # --- emitting ---------------------------------------------------------------------

    def _emit(self, kind: BlockKind, text: str, level: int = 0) -> None:
        if not text.strip():
            return
        if self._label is not None and kind != "heading":
            label, self._label = self._label, None
            if kind == "paragraph":
                same = text.lower().startswith(label.lower().rstrip(":") + ":")
                text = text if same else f"{label}: {text}"
            else:
                self.blocks.append(Block("paragraph", f"{label}:"))
        self.blocks.append(Block(kind, text, level=level))

    def _flush(self) -> None:
        text = clean("".join(self._inline))
        self._inline.clear()
        if text:
            self._emit("paragraph", text)

    # --- elements ---------------------------------------------------------------------

    def _container(self, element: Element) -> None:
        if element.text:
            self._inline.append(element.text)
        for child in element:
            if not self.skip(child):
                self._element(child)
            if child.tail:
                self._inline.append(child.tail)

    def _element(self, element: Element) -> None:
        tag = element.tag
        if tag in HEADINGS:
            self._flush()
            text = clean(self.text_of(element))
            if self._admonition_depth:
                self._label = text or self._label
            elif text:
                self._emit("heading", text, HEADINGS[tag])
            return
        if tag == "pre":
            self._flush()
            self._emit("code", _code(self.text_of(element)))
            return
        if tag in ("ul", "ol") and not element.xpath(_STRUCTURE):
            self._flush()
            self._emit("list", "\n".join(self._list_items(element, 0)))
            return
        if tag == "dl":
            self._flush()
            self._definitions(element)
            return
        if tag == "table":
            self._flush()
            self._emit("table", "\n".join(self._rows(element)))
            return
        if tag == "br":
            self._inline.append(" ")
            return
        if tag == "hr":
            self._flush()
            return
        if _is_admonition(element):
            self._admonition(element)
            return
        if self._admonition_depth and classes(element) & _ADMONITION_TITLES:
            self._flush()
            self._label = clean(self.text_of(element)) or self._label
            return
        if tag in _BLOCK_TAGS or _has_blocks(element):
            self._flush()
            self._container(element)
            self._flush()
            return
        self._inline.append(self.text_of(element))

    def _admonition(self, element: Element) -> None:
        self._flush()
        self._admonition_depth += 1
        summary = element.find("summary") if element.tag == "details" else None
        if summary is not None:
            self._label = clean(self.text_of(summary))
            summary.drop_tree()
        try:
            self._container(element)
            self._flush()
        finally:
            self._admonition_depth -= 1
            if self._label is not None:  # a box with a title and nothing else
                self._label = None

    def _list_items(self, element: Element, depth: int) -> list[str]:
        """`- item` lines; a nested list's items follow its parent item, indented."""
        lines: list[str] = []
        for item in element:
            if item.tag != "li" or self.skip(item):
                continue
            text = clean(self._text_without_lists(item))
            if text:
                lines.append(f"{'  ' * depth}- {text}")
            for sub in item.iterdescendants("ul", "ol"):
                if _nearest_item(sub) is item:
                    lines.extend(self._list_items(sub, depth + 1))
        return lines

    def _text_without_lists(self, item: Element) -> str:
        outer = self.skip
        self.skip = lambda e: outer(e) or e.tag in ("ul", "ol")
        try:
            return self.text_of(item)
        finally:
            self.skip = outer

    def _definitions(self, element: Element) -> None:
        for child in element:
            if self.skip(child):
                continue
            if child.tag == "dt":
                self._emit("paragraph", clean(self.text_of(child)))
            elif child.tag == "dd":
                self._container(child)
                self._flush()

    def _rows(self, table: Element) -> list[str]:
        rows: list[str] = []
        for row in table.iter("tr"):
            cells = [clean(self.text_of(c)) for c in row if c.tag in ("td", "th")]
            if any(cells):
                rows.append(" | ".join(cells))
        return rows


def _nearest_item(element: Element) -> Element | None:
    for ancestor in element.iterancestors("li"):
        return ancestor
    return None


def _code(text: str) -> str:
    """Code as written: trailing spaces and surrounding blank lines dropped."""
    lines = [line.rstrip() for line in text.replace("\t", "    ").split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)
