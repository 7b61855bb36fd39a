"""What an emulating model is told: the tools described in the system prompt, and a
short reminder at the end of the last user turn."""

from __future__ import annotations

import json

from pilothouse.types import Message, TextPart, ToolSpec


def with_system_text(messages: tuple[Message, ...], extra: str) -> tuple[Message, ...]:
    """Append `extra` to the system instructions (first system message), so the
    stable part of the prompt stays at its start and can be reused from cache."""
    if not extra:
        return messages
    out = list(messages)
    for i, message in enumerate(out):
        if message.role == "system":
            out[i] = Message("system", (TextPart(f"{message.text}\n\n{extra}"),))
            return tuple(out)
    return (Message.system(extra), *out)


def describe_tools(
    tools: tuple[ToolSpec, ...],
    *,
    allow_answer: bool,
    max_calls: int | None,
    structured_answer: bool,
    answer_first: bool = True,
) -> str:
    """Tool instructions for the system prompt, in the function-signature style many
    open models were trained on. `answer_first` offers the plain answer before the
    function calls (see `ModelProfile.emulation_answer_first`)."""
    signatures = "\n".join(
        json.dumps(
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
        )
        for t in tools
    )
    how_many = "one function" if max_calls == 1 else "one or more functions"
    answer = "<your answer as JSON>" if structured_answer else "<text>"
    calls = (
        "To call functions: "
        '{"tool_calls": [{"name": <function-name>, "arguments": <args-json-object>}]}. '
    )
    rules = "Respond with one JSON object. "
    if allow_answer and answer_first:
        rules += f'To reply to the user: {{"answer": {answer}}}. {calls}'
    elif allow_answer:
        rules += f'{calls}To reply to the user without calling a function: {{"answer": {answer}}}. '
    else:
        rules += calls
    rules += "Function results are returned inside <tool_result></tool_result> tags."
    return (
        f"# Tools\n\nYou may call {how_many} to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        f"<tools>\n{signatures}\n</tools>\n\n{rules}"
    )


# Measured on Qwen2.5-Coder-0.5B: without the reminder at the end of the turn it
# answered from memory where a tool was needed; with "or call another function" after
# results it looped on the same call. Used with the calls offered first.
CALL_REMINDER = (
    "(If one of the functions can help, call it; do not guess what a function would return.)"
)
# With the answer offered first: the 1.5B's helpdesk copilot called a ticket tool for
# 0 of 8 handbook questions with this, against 8 of 8 with CALL_REMINDER and the calls
# first, and still made all 3 calls its requests needed.
ANSWER_OR_CALL_REMINDER = (
    "(If the request needs a function, call it rather than guess its result; otherwise answer.)"
)
RESULT_REMINDER = "(Answer the question using the function results above.)"
# After a failed call (often a guess, such as an id copied from an example) the 1.5B
# answered about the failure ("There is no ticket HD-1234") instead of the question.
ERROR_REMINDER = (
    "(The function call did not work. Answer the original question from the text above "
    "if it answers it; otherwise say what is missing.)"
)
REQUIRED_REMINDER = "(Call a function now.)"


def with_reminder(
    messages: tuple[Message, ...],
    original_last: Message,
    required: bool,
    *,
    answer_first: bool = True,
) -> tuple[Message, ...]:
    """A short reminder at the end of the last user turn: small models follow the
    instruction nearest to the answer best, and the end is what changes per turn
    anyway (the cached prompt prefix is unaffected)."""
    if not messages or messages[-1].role != "user":
        return messages
    if required:
        reminder = REQUIRED_REMINDER
    elif original_last.tool_results and all(r.is_error for r in original_last.tool_results):
        reminder = ERROR_REMINDER
    elif original_last.role == "tool" or original_last.tool_results:
        reminder = RESULT_REMINDER
    else:
        reminder = ANSWER_OR_CALL_REMINDER if answer_first else CALL_REMINDER
    last = messages[-1]
    return (*messages[:-1], Message("user", (*last.parts, TextPart(f"\n\n{reminder}"))))
