import re
from pathlib import Path

from promptflow.core import tool

DOCS = Path(__file__).parent / "docs"


def _words(text: str) -> set:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


@tool
def retrieve_documents(question: str, top_k: int = 2) -> list:
    wanted = _words(question)
    scored = []
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        scored.append((len(wanted & _words(text)), path.name, text))
    scored.sort(key=lambda item: -item[0])
    return [{"source": name, "content": text} for score, name, text in scored[:top_k] if score]
