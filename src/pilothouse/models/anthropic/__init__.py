"""The Anthropic Messages protocol (`POST {base_url}/v1/messages`).

How the neutral request maps onto the wire:

- system messages become the top-level `system` string; the rest alternate `user` /
  `assistant`, so consecutive messages of one role (a tool message followed by a user
  message, say) are merged into one turn. Tool results travel as `tool_result` blocks
  at the start of a **user** turn; tool calls as `tool_use` blocks at the end of an
  assistant turn.
- `max_tokens` is required by Anthropic: `max_output_tokens`, else the profile's
  `default_max_tokens` (profiles.toml), else 4096.
- `seed` has no Anthropic counterpart and is not sent.
- Structured output: the classic Messages API has no JSON-schema response field, so the
  output schema is offered as one extra tool (named after `OutputSchema.name`) whose
  `input_schema` is the schema, and `tool_choice` forces it (or `any` tool, when the
  caller's own tools may be called first). The input of that tool call is returned as
  the JSON text of the answer, with finish reason `stop`. A schema whose top level is
  not an object is wrapped as `{"value": schema}` and unwrapped on the way back.
- Usage: Anthropic's `input_tokens` excludes prompt-cache reads and writes. Pilothouse
  reports `input_tokens` as fresh + cache creation + cache read tokens, so totals are
  comparable across vendors, and `cached_tokens` as the cache reads.

Modules: adapter.py (`AnthropicModel`, URL, key, the calls), request.py (the request
body), response.py (answers, stream events, errors read back).
"""

from pilothouse.models.anthropic.adapter import DEFAULT_API_VERSION, AnthropicModel
from pilothouse.models.anthropic.request import DEFAULT_MAX_TOKENS

__all__ = ["DEFAULT_API_VERSION", "DEFAULT_MAX_TOKENS", "AnthropicModel"]
