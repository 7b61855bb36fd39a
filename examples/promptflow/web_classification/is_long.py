from promptflow import tool


@tool
def is_long(text: str) -> bool:
    return len(text) > 200
