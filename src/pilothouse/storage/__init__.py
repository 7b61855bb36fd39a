"""Storage: the data directory and its SQLite database."""

from pilothouse.storage.home import load_settings

__all__ = ["load_settings"]
