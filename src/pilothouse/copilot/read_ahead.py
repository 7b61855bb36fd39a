"""Reading a copilot's stable prefix before its first question.

Every request of a run begins with the same messages: the instructions (and, for
stepped turns, the tools and steps; for emulated tools, their descriptions). A model
that runs in this process (the embedded runtime) keeps what it has read in its prompt
cache, so a copilot that has been asked once reads only what is new. A fresh process
(`pilothouse chat`, a server that just started) would make its first user wait for the
whole prefix (~560 tokens on the helpdesk: 35 s on the 1.5B on two busy cores); reading
it ahead, while the copilot opens and the user types, takes that off the first answer.

The request is the one a run's first model call makes, up to the user's turn, which is
left empty; the model is asked for one token. Remote models are not read ahead (their
caches are the provider's, and a request costs money).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from pilothouse.copilot.run_model import RunModel, uses_steps
from pilothouse.copilot.run_state import Parts, RunState
from pilothouse.errors import PilothouseError
from pilothouse.types import Message, ModelRequest, ToolChoice, Usage

log = logging.getLogger(__name__)


def prefix_request(parts: Parts, history: Sequence[Message] = ()) -> ModelRequest:
    """The request that reads the prefix: what a run's first model call sends before
    the conversation, then `history` (a conversation as the next turn sends it,
    copilot/passages_ahead.py) or, without one, an empty user turn; one token of
    answer."""
    stepped = uses_steps(parts)
    state = RunState("read-ahead", "", "", None, [])
    model = RunModel(parts, state, {}, strict=False, stepped=stepped)
    head = model.head(parts.models[0].profile.family)
    system = tuple(head[: _systems(head)])
    specs = parts.toolset.specs() if len(parts.toolset) else ()
    # As the run's first call: a stepped turn's steps say "none", a native one "auto".
    choice: ToolChoice = "none" if stepped and specs else "auto"
    request = model.request((*system, *(history or [Message.user("")])), specs, choice)
    return replace(request, max_output_tokens=1)


async def read_ahead(parts: Parts) -> Usage | None:
    """Read the prefix into the primary model's prompt cache when the model runs here;
    the usage of that read (None: not read). A failure is logged, never raised: the
    first question then reads the prefix itself."""
    if not parts.models or not parts.models[0].runs_here():
        return None
    try:
        response = await parts.models[0].complete(prefix_request(parts))
    except PilothouseError as error:
        log.info("%s: reading the prompt ahead failed (%s)", parts.definition.name, error)
        return None
    return response.usage


def _systems(head: list[Message]) -> int:
    count = 0
    while count < len(head) and head[count].role == "system":
        count += 1
    return count
