from promptflow import tool


@tool
def keep_text(text: str) -> str:
    return text
