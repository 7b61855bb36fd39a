"""A realistic run recorded with the tracer, the way the copilot runtime records one:
retrieval with scores, a model call that fell back to another model and asked for a
tool, the tool call, an approval, and the final model call."""

from __future__ import annotations

import asyncio

from pilothouse.tracing import Span, Tracer
from pilothouse.tracing import attributes as attr

SYSTEM = "You are the IT helpdesk. Answer from the handbook."
QUESTION = "My VPN token expired. How do I reset it?"
ANSWER = "Open the VPN portal and choose Reset token [1]. I also opened ticket T-7."
HITS = [
    {
        "chunk_id": "vpn#3",
        "source": "vpn-guide.pdf",
        "page": 4,
        "heading": "Resetting",
        "score": 0.83,
        "text": "To reset your token, open the portal.",
    },
    {
        "chunk_id": "faq#9",
        "source": "faq.md",
        "heading": "VPN",
        "score": 0.41,
        "text": "VPN questions.",
    },
]


def request_messages(*extra: dict[str, object]) -> list[dict[str, object]]:
    return [
        {"role": "system", "parts": [{"kind": "text", "text": SYSTEM}]},
        {"role": "user", "parts": [{"kind": "text", "text": QUESTION}]},
        *extra,
    ]


TOOL_CALL = {
    "role": "assistant",
    "parts": [
        {
            "kind": "tool_call",
            "id": "call_1",
            "name": "open_ticket",
            "arguments": {"title": "VPN token"},
        }
    ],
}
TOOL_RESULT = {
    "role": "tool",
    "parts": [
        {
            "kind": "tool_result",
            "tool_call_id": "call_1",
            "name": "open_ticket",
            "content": "T-7",
            "is_error": False,
        }
    ],
}


async def record_sample_run(
    tracer: Tracer, *, copilot: str = "helpdesk", question: str = QUESTION, fail_tool: bool = False
) -> Span:
    """Record one run; returns its root span (whose trace id is the run id)."""
    with tracer.span(
        copilot,
        kind="run",
        attributes={
            attr.AGENT_NAME: copilot,
            attr.CONVERSATION_ID: "conv-42",
            attr.RUN_QUESTION: question,
        },
    ) as run:
        with tracer.span(
            "retrieve",
            kind="retrieval",
            attributes={
                attr.DATA_SOURCE_ID: "handbook",
                attr.RETRIEVAL_QUERY: question,
                attr.REQUEST_TOP_K: 4,
            },
        ) as retrieval:
            await asyncio.sleep(0.001)
            retrieval.set(attr.RETRIEVAL_HITS, HITS)
        with tracer.span(
            "chat",
            kind="model",
            attributes={
                attr.REQUEST_MODEL: "openai:gpt-4.1-mini",
                attr.REQUEST_TEMPERATURE: 0.2,
                attr.REQUEST_MAX_TOKENS: 512,
                attr.REQUEST_MESSAGES: request_messages(),
                attr.REQUEST_TOOLS: ["open_ticket"],
            },
        ) as call:
            call.add_event("fallback", {"from": "openai:gpt-4.1-mini", "error": "rate limited"})
            call.update(
                {
                    attr.RESPONSE_MODEL: "anthropic:claude-sonnet-4-5",
                    attr.USAGE_INPUT_TOKENS: 310,
                    attr.USAGE_OUTPUT_TOKENS: 22,
                    attr.USAGE_CACHED_TOKENS: 100,
                    attr.COST_USD: 0.0012,
                    attr.FINISH_REASONS: ["tool_calls"],
                    attr.RESPONSE_MESSAGE: TOOL_CALL,
                }
            )
        with tracer.span(
            "open_ticket",
            kind="approval",
            attributes={attr.TOOL_NAME: "open_ticket", attr.TOOL_CALL_ID: "call_1"},
        ) as approval:
            approval.set(attr.APPROVAL_DECISION, "approved")
        with tracer.span(
            "open_ticket",
            kind="tool",
            attributes={
                attr.TOOL_NAME: "open_ticket",
                attr.TOOL_CALL_ID: "call_1",
                attr.TOOL_ARGUMENTS: {"title": "VPN token", "api_key": "sk-should-not-leak"},
            },
        ) as tool:
            if fail_tool:
                tool.fail(ConnectionError("ticket service unreachable"))
                tool.set(attr.TOOL_RESULT, "error: ticket service unreachable")
                tool.set(attr.TOOL_IS_ERROR, True)
            else:
                tool.set(attr.TOOL_RESULT, "T-7")
        with tracer.span(
            "chat",
            kind="model",
            attributes={
                attr.REQUEST_MODEL: "openai:gpt-4.1-mini",
                attr.REQUEST_MESSAGES: request_messages(TOOL_CALL, TOOL_RESULT),
            },
        ) as final:
            final.update(
                {
                    attr.RESPONSE_MODEL: "openai:gpt-4.1-mini",
                    attr.USAGE_INPUT_TOKENS: 400,
                    attr.USAGE_OUTPUT_TOKENS: 35,
                    attr.COST_USD: 0.0008,
                    attr.FINISH_REASONS: ["stop"],
                    attr.RESPONSE_MESSAGE: {
                        "role": "assistant",
                        "parts": [{"kind": "text", "text": ANSWER}],
                    },
                }
            )
        run.set(attr.RUN_ANSWER, ANSWER)
        run.set(attr.RUN_STEPS, 2)
    return run
