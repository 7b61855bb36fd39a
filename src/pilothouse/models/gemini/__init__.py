"""The Gemini protocol: Google's Generative Language API (v1beta).

`POST {base}/models/{model}:generateContent` answers whole; `:streamGenerateContent?alt=sse`
streams server-sent events, each one a `GenerateContentResponse` chunk, with no end
marker other than the chunk that carries `finishReason`. The key travels only in the
`x-goog-api-key` header. `embed` uses `:batchEmbedContents`.

Choices worth knowing (see docs/providers/gemini.md):
- Tool parameters and output schemas are sent as JSON Schema (`parametersJsonSchema`,
  `responseJsonSchema`), lightly normalised by `gemini_json_schema`, so `required` and
  `enum` survive exactly instead of going through Gemini's older OpenAPI subset.
- The classic API has no call ids: tool results are sent in the order of the calls of
  the preceding model turn (matched by id, then by name), and returned calls get
  generated ids unless Gemini supplied one.
- Thought signatures Gemini attaches to function calls are remembered per model
  instance and sent back with the call; calls it never saw (another model's, or from
  before a restart) carry Google's documented placeholder signature instead.

Modules: adapter.py (`GeminiModel`, URLs, key, signature memory, the calls), request.py
(the request body), response.py (answers, stream chunks, errors read back), schema.py
(the JSON Schema converter), embeddings.py.
"""

from pilothouse.models.gemini.adapter import GeminiModel
from pilothouse.models.gemini.embeddings import DEFAULT_EMBEDDING_MODEL, EMBED_BATCH_SIZE
from pilothouse.models.gemini.request import (
    PLACEHOLDER_SIGNATURE,
    build_contents,
    function_calling_config,
)
from pilothouse.models.gemini.response import finish_reason, gemini_error, usage_from
from pilothouse.models.gemini.schema import gemini_json_schema, tool_parameters

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "EMBED_BATCH_SIZE",
    "PLACEHOLDER_SIGNATURE",
    "GeminiModel",
    "build_contents",
    "finish_reason",
    "function_calling_config",
    "gemini_error",
    "gemini_json_schema",
    "tool_parameters",
    "usage_from",
]
