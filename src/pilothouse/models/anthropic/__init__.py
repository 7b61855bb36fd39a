"""The Anthropic Messages protocol (see adapter.py)."""

from pilothouse.models.anthropic.adapter import AnthropicModel

__all__ = ["AnthropicModel"]
