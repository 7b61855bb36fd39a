"""The management API (mounted under `/api`): copilots, knowledge, conversations, runs
and traces, pending approvals. See docs/management-api.md."""

from pilothouse.server.management.router import PREFIX, install, router
from pilothouse.server.management.state import (
    ManagementState,
    close_management,
    copilots_dir,
    managed_copilot_folders,
)

__all__ = [
    "PREFIX",
    "ManagementState",
    "close_management",
    "copilots_dir",
    "install",
    "managed_copilot_folders",
    "router",
]
