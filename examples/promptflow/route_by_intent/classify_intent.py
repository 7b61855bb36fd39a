import re

from promptflow import tool


@tool
def classify_intent(question: str) -> str:
    return "math" if re.search(r"\d+\s*[-+*/]\s*\d+", question) else "general"
