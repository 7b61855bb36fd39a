"""The Gemini protocol (see adapter.py)."""

from pilothouse.models.gemini.adapter import (
    PLACEHOLDER_SIGNATURE,
    GeminiModel,
    build_contents,
    gemini_json_schema,
    tool_parameters,
)

__all__ = [
    "PLACEHOLDER_SIGNATURE",
    "GeminiModel",
    "build_contents",
    "gemini_json_schema",
    "tool_parameters",
]
