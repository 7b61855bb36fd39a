"""Tool calls for models without native tool calling, through JSON-schema constrained
decoding, behind the normal tool-call interface.

`emulate_tools(request)` rewrites a request for such a model:

- the tools are described in the system prompt, and the answer is constrained to one
  JSON object, either `{"answer": "..."}` or `{"tool_calls": [{"name": ..., "arguments":
  {...}}]}` (one `anyOf` branch per tool, so each tool's arguments follow its own
  schema; `tool_choice` and `parallel_tool_calls` narrow the schema);
- earlier tool calls in the history become the assistant's JSON, and tool results
  (which such models have no role for) become user messages inside clearly marked
  `<tool_result>` blocks.

`ToolEmulation.decode(events)` turns the constrained JSON the model streams back into
the normal events: the answer string is decoded incrementally, so a plain answer still
streams token by token; tool calls are emitted whole once their JSON is complete, with
ids that are stable for the same conversation and call.

`EmulatedToolsModel` wraps any model that can follow an output JSON schema and gives
it tools this way. Structured output alone (`output_schema` without tools) needs no
emulation: the schema goes to the constrained decoder as it is.

Modules: `history` (the conversation without tool roles), `schema` (the constrained
envelope), `instructions` (tool descriptions and reminders), `plan` (`emulate_tools`),
`decoder` (`EnvelopeDecoder`), `model` (`EmulatedToolsModel`).
"""

from pilothouse.models.emulation.decoder import EnvelopeDecoder, stable_call_id
from pilothouse.models.emulation.history import (
    render_history,
    render_tool_call_json,
    render_tool_result,
)
from pilothouse.models.emulation.instructions import (
    ANSWER_OR_CALL_REMINDER,
    CALL_REMINDER,
    ERROR_REMINDER,
    REQUIRED_REMINDER,
    RESULT_REMINDER,
)
from pilothouse.models.emulation.model import EmulatedToolsModel
from pilothouse.models.emulation.plan import ToolEmulation, emulate_tools, needs_emulation
from pilothouse.models.emulation.schema import ENVELOPE_NAME, envelope_schema

__all__ = [
    "ANSWER_OR_CALL_REMINDER",
    "CALL_REMINDER",
    "ENVELOPE_NAME",
    "ERROR_REMINDER",
    "REQUIRED_REMINDER",
    "RESULT_REMINDER",
    "EmulatedToolsModel",
    "EnvelopeDecoder",
    "ToolEmulation",
    "emulate_tools",
    "envelope_schema",
    "needs_emulation",
    "render_history",
    "render_tool_call_json",
    "render_tool_result",
    "stable_call_id",
]
