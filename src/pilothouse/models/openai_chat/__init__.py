"""The OpenAI Chat Completions protocol, spoken by OpenAI, Azure OpenAI and every
OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio, Groq, Together,
OpenRouter, Mistral).

Who hosts the model is the `Endpoint` (models/providers.py): base URL, key header,
Azure's deployment URLs and api-version, and which field carries the output token
limit. What the model can do is its profile (profiles.toml). This package only maps
Pilothouse's neutral request to the wire format and the answer back:

- adapter.py: `OpenAIChatModel`, URLs, keys, the calls themselves;
- request.py: the neutral request as a request body;
- response.py: answers, stream chunks and in-band errors read back;
- embeddings.py: embeddings batching and vectors.
"""

from pilothouse.models.openai_chat.adapter import OpenAIChatModel
from pilothouse.models.openai_chat.embeddings import DEFAULT_EMBEDDING_BATCH, EMBEDDING_INPUT_LIMIT

__all__ = ["DEFAULT_EMBEDDING_BATCH", "EMBEDDING_INPUT_LIMIT", "OpenAIChatModel"]
