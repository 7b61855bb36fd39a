"""Pilothouse: an organisation's own copilots, on any model."""

__version__ = "0.1.0"
