"""Folders that `pilothouse init NAME` copies to start a new copilot (see scaffold.py)."""

from pilothouse.copilot.templates.scaffold import (
    NAME_PLACEHOLDER,
    TEMPLATES,
    copy_template,
    template_files,
    valid_name,
)

__all__ = ["NAME_PLACEHOLDER", "TEMPLATES", "copy_template", "template_files", "valid_name"]
