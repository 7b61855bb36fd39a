from promptflow import tool


@tool
def clean_title(text: str) -> str:
    lines = [line.strip().strip('"') for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""
