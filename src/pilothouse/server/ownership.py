"""Who may see and decide what a key started.

- A run, its paused state and its conversation record the key (its id) that started
  them. A conversation is seen and continued only by that key, or by an `admin` key.
- A paused run's tool calls are decided by a key with `approve:<copilot>` (`approve:*`
  and `admin` imply it), or by the key that started the run when the copilot opts in
  (`approvals: {self_approve: true}` in copilot.yaml).
- A key without the right gets the answer it would get for an id that does not exist:
  it never learns that the run or conversation is there.

Runs and conversations started without a key (the CLI, the Python API) belong to no key:
only `admin` (and the anonymous caller of a `--no-auth` server, which is admin) sees them.
"""

from __future__ import annotations

from pilothouse.copilot.conversation_records import Conversation
from pilothouse.copilot.paused_runs import PausedRun
from pilothouse.server.auth import ADMIN, Principal
from pilothouse.server.context import CopilotHost


def owns(principal: Principal, key_id: str | None) -> bool:
    """Whether `principal` is the key recorded as `key_id` (never true for no key)."""
    return principal.key_id is not None and key_id == principal.key_id


def may_see_conversation(principal: Principal, conversation: Conversation) -> bool:
    return principal.allows(ADMIN) or owns(principal, conversation.key_id)


def self_approval(copilots: CopilotHost, copilot: str) -> bool:
    """Whether the served copilot lets a run's own key decide its calls."""
    served = copilots.get(copilot)
    return served is not None and served.definition.approvals.self_approve


def may_decide(principal: Principal, paused: PausedRun, *, self_approve: bool) -> bool:
    """Whether `principal` may approve or deny `paused`'s tool calls."""
    if principal.allows(f"approve:{paused.copilot}"):
        return True
    return self_approve and owns(principal, paused.key_id)
