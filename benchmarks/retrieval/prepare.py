"""Build the retrieval benchmark corpus and questions from Debian's python3-doc.

    apt-get install -y python3-doc
    python benchmarks/retrieval/prepare.py --out /tmp/pilothouse-bench/corpus

The corpus is the Python documentation as shipped (HTML), except the FAQ pages: every
FAQ entry whose heading is a question becomes one Markdown file holding only the
answer (the question is NOT in it), and the question goes to questions.jsonl with
that file as its relevant document. The rest of the documentation (~500 pages) is the
haystack. Questions are written by the documentation's authors, not by us, and never
appear verbatim in the indexed text, so neither BM25 nor dense retrieval gets the
answer for free from a copied heading.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import lxml.html

HERE = Path(__file__).parent
DEFAULT_DOCS = Path("/usr/share/doc/python3.11/html")
HEADINGS = ("h1", "h2", "h3", "h4", "h5")


def clean(text: str) -> str:
    return " ".join(text.replace("¶", " ").split())


def block_text(element: lxml.html.HtmlElement) -> str:
    """Readable text of one block of an answer (paragraph, list, code, table...)."""
    if element.tag == "div" and "highlight" in (element.get("class") or ""):
        return "```\n" + element.text_content().strip("\n") + "\n```"
    if element.tag in ("ul", "ol"):
        return "\n".join(f"- {clean(li.text_content())}" for li in element.iter("li"))
    if element.tag == "pre":
        return "```\n" + element.text_content().strip("\n") + "\n```"
    return clean(element.text_content())


def faq_entries(page: Path) -> list[tuple[str, str]]:
    """(question, answer text) for each FAQ section whose heading is a question. The
    answer is the section's own blocks, without nested sections."""
    tree = lxml.html.parse(str(page))
    entries = []
    for section in tree.xpath("//section[@id]"):
        children = list(section)
        if not children or children[0].tag not in HEADINGS:
            continue
        question = clean(children[0].text_content())
        if not question.endswith("?"):
            continue
        blocks = [
            block_text(child)
            for child in children[1:]
            if child.tag != "section" and isinstance(child.tag, str)
        ]
        answer = "\n\n".join(b for b in blocks if b.strip())
        if len(answer) >= 40:
            entries.append((question, answer))
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--questions", type=Path, default=HERE / "questions.jsonl")
    args = parser.parse_args()
    if not args.docs.is_dir():
        raise SystemExit(f"{args.docs} not found: apt-get install -y python3-doc")
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)

    pages = 0
    for page in sorted(args.docs.rglob("*.html")):
        relative = page.relative_to(args.docs)
        if relative.parts[0].startswith("_") or relative.parts[0] == "faq":
            continue
        if relative.name in ("genindex.html", "search.html", "py-modindex.html"):
            continue
        if relative.name.startswith("genindex-"):
            continue
        target = args.out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page, target)
        pages += 1

    questions: dict[str, list[str]] = {}
    answers = 0
    for page in sorted((args.docs / "faq").glob("*.html")):
        title = clean(lxml.html.parse(str(page)).findtext(".//title") or page.stem)
        title = re.sub(r"\s+—\s+Python.*$", "", title)
        for number, (question, answer) in enumerate(faq_entries(page), start=1):
            name = f"faq/{page.stem}-{number:03}.md"
            target = args.out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f"# {title}, answer {number}\n\n{answer}\n", encoding="utf-8")
            questions.setdefault(question, []).append(name)
            answers += 1

    with args.questions.open("w", encoding="utf-8") as handle:
        for number, (question, relevant) in enumerate(questions.items(), start=1):
            record = {"id": number, "question": question, "relevant": relevant}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{pages} pages, {answers} FAQ answers, {len(questions)} questions -> {args.out}")


if __name__ == "__main__":
    main()
