from promptflow import tool


@tool
def pick_answer(math: str = None, general: str = None) -> str:
    return math if math is not None else (general or "")
