"""HTTP server: the OpenAI-compatible API, the gateway and the management API."""
