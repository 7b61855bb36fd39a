"""The `pilothouse` command line."""

from pilothouse.cli.app import app, main

__all__ = ["app", "main"]
