"""Copilots: definitions, prompts, and the runtime that composes models, knowledge and tools."""
