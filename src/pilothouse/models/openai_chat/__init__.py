"""The OpenAI Chat Completions protocol (see adapter.py)."""

from pilothouse.models.openai_chat.adapter import OpenAIChatModel

__all__ = ["OpenAIChatModel"]
