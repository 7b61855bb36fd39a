from promptflow.core import tool


@tool
def count_turns(chat_history: list) -> int:
    return len(chat_history)
