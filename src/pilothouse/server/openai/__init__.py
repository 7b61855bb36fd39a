"""The OpenAI-compatible API: chat completions (raw models and copilots), the
Responses API, embeddings, the model list and its OpenAPI schema."""
