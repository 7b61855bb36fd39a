"""Reading ahead while the user reads: the rest of a turn's passages, read into the
model's cache before the next question comes, and sent with that question only if it
was read.

A follow-up's first word waits for the prefill of what it reads anew, and most of that
is more of the passages the turn before was given (the floor-3 row of the table whose
floor-1 row answered, the sentence after the one that did: benchmarks/latency/README.md,
"Sixth session"). Those are known when the turn ends, seconds before the user has read
the answer and typed the next question. So, after a turn answered from passages, the
runtime makes a user message `More of the passages above:` with the units (sentences,
list items, table rows with their header) of the turn's passages that the conversation
has not been sent yet, under each passage's number; the passages the answer cited
first, each in its own order, up to the model profile's `read_ahead` tokens; and, while
the user reads, prefills the conversation followed by that message (one token asked
for).

The next question's prompt holds the message only where it was read: its read had
begun when the question came (a read under way is waited for: llama.cpp cannot stop a
prompt batch it has begun, and what it reads is the start of this question's prompt)
or had ended. Then it goes before the question's own turn and is stored with it (the
turn's sent form), so the conversation as sent replays the prompt, sent_passages.py
counts its units as held and the turn names its passages given above at one place
together. A question asked at once (before the read began, half a second after the
answer), in a new process, or after a read that failed, is sent as without reading
ahead, byte for byte: it does not pay for a message it would read itself.

Where no rest is read (no `read_ahead`, or nothing left), the next turn's opening is:
the conversation and the start of a user turn with passages (`grounding.PASSAGES`), a
dozen tokens every follow-up otherwise reads itself (the chat template's end of the
answer and start of the user turn, and the heading), on any profile; nothing is held,
the next prompt is the same whatever the timing, it only finds more of itself cached.

Only where the prefix cache is this process's: every model of the chain runs here
(the embedded runtime), cuts passages to a budget and says how much to read ahead
(the profile's `read_ahead`); a remote provider's requests are unchanged (its cache is
the provider's, and every token is billed). A question in another conversation cancels
a read not begun yet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from pilothouse.copilot.events import Citation
from pilothouse.copilot.grounding import PASSAGES, context_block
from pilothouse.copilot.passage_budget import Unit, join_units, split_units
from pilothouse.copilot.read_ahead import prefix_request
from pilothouse.copilot.run_state import Parts, RunState
from pilothouse.copilot.sent_passages import held_units
from pilothouse.errors import PilothouseError
from pilothouse.knowledge.tokens import ApproximateCounter
from pilothouse.tracing import attributes as A
from pilothouse.types import Message

log = logging.getLogger(__name__)

HEADING = "More of the passages above:"
PIECE = 64
"""Tokens read ahead per request: llama.cpp cannot stop a prompt batch it has begun,
so a question that comes while the rest is read waits for one piece (about a second
on two cores), not for the whole read."""
_COUNT = ApproximateCounter().count


def keeps_rest(parts: Parts) -> bool:
    """Whether a turn's answer keeps the rest of its passages for the next turn: every
    model of the chain runs here, cuts passages and reads ahead (its profile's
    `read_ahead`), and turns are sent as sent."""
    return reads_opening(parts) and all(
        m.profile.passage_budget and m.profile.read_ahead for m in parts.models
    )


def reads_opening(parts: Parts) -> bool:
    """Whether the next turn's opening is read ahead after a turn (module doc): every
    model of the chain runs here and turns are sent as sent (so the next prompt begins
    with the conversation as the cache holds it)."""
    models = parts.models
    return (
        bool(models)
        and all(m.runs_here() for m in models)
        and parts.definition.memory.turns == "sent"
    )


def rest_pieces(state: RunState, budget: int, piece: int) -> list[Message]:
    """The messages to read ahead after the turn of `state`, each the one before and
    more: the units of the turn's passages not sent yet, cited passages first, up to
    `budget` tokens in all (see the module doc), in pieces of about `piece` tokens (a
    piece's text begins with the one before it); none when there are no such units."""
    sent = [m.text for m in (*state.history, *(state.sent_turn or ())) if m.role == "user"]
    cited = {*state.model_cited, *state.runtime_cited}
    ordered = sorted(state.citations, key=lambda c: c.number not in cited)  # stable
    spent = 0
    units: list[tuple[Citation, Unit]] = []
    for citation in ordered:
        if not citation.text:
            continue
        held = held_units(sent, citation)
        # A header sent already still goes with the rows (_fill keeps it with them).
        rest = [u for u in split_units(citation.text) if u.header or u.text not in held]
        kept, spent = _fill(rest, spent, budget)
        units += [(citation, unit) for unit in kept]
    pieces: list[Message] = []
    cost = 0
    for index, (_, unit) in enumerate(units):
        cost += _COUNT(unit.text)
        last = index == len(units) - 1
        if last or (cost >= piece and not unit.header):  # a header goes with its row
            pieces.append(_message(units[: index + 1]))
            cost = 0
    return pieces


def _message(units: list[tuple[Citation, Unit]]) -> Message:
    """The read-ahead message holding `units`, under their passages' numbers."""
    passages: dict[int, tuple[Citation, list[Unit]]] = {}
    for citation, unit in units:
        passages.setdefault(citation.number, (citation, []))[1].append(unit)
    chosen = list(passages.values())
    block = context_block([c for c, _ in chosen], [join_units(us) for _, us in chosen])
    return Message.user(f"{HEADING}\n\n{block}")


def _fill(units: list[Unit], spent: int, budget: int) -> tuple[list[Unit], int]:
    """`units` in order while they fit in `budget` (`spent` of it gone), a table row
    with its header; what is kept and the tokens spent after."""
    kept: list[Unit] = []
    for index, unit in enumerate(units):
        if unit.header:
            continue
        header = next(
            (h for h in reversed(units[:index]) if h.header and h.block == unit.block), None
        )
        extra = [header] if header is not None and header not in kept else []
        cost = sum(_COUNT(u.text) for u in (*extra, unit))
        if spent + cost > budget:
            continue
        kept += [*extra, unit]
        spent += cost
    return kept, spent


def rest_for(parts: Parts, state: RunState) -> list[Message]:
    """The messages to read ahead after the turn of `state` (`rest_pieces`), where the
    conversation keeps the rest (`keeps_rest`) and the answer is the model's reply (not
    a message said without a model); none otherwise or when nothing is left."""
    if state.sent_reply is None or not state.citations or not keeps_rest(parts):
        return []
    return rest_pieces(state, parts.models[0].profile.read_ahead or 0, PIECE)


async def prefill(parts: Parts, conversation_id: str, message: Message) -> bool:
    """Read the conversation as the next turn will send it into the model's cache: its
    history followed by `message`, one token asked for; whether it was read (a failure
    is logged, never raised: the next question is then sent without `message`)."""
    attributes = {A.AGENT_NAME: parts.definition.name, A.CONVERSATION_ID: conversation_id}
    # A child of the run that answered (the task was made in its context), ending after it.
    with parts.tracer.span("read_ahead", attributes=attributes) as span:
        try:
            memory = await parts.memory.context(conversation_id)
            request = prefix_request(parts, [*memory.messages, message])
            response = await parts.models[0].complete(request)
        except PilothouseError as error:
            log.info("%s: reading the next turn ahead failed (%s)", parts.definition.name, error)
            span.set("pilothouse.read_ahead.failed", str(error))
            return False
        span.update(
            {
                A.USAGE_INPUT_TOKENS: response.usage.input_tokens,
                A.USAGE_CACHED_TOKENS: response.usage.cached_tokens,
            }
        )
    return True


class Reading:
    """The runtime's reads ahead, by conversation: those under way, and the messages
    read (what the conversation's next question begins with). Each starts `DELAY`
    seconds after its turn: a process that closes right after an answer (`pilothouse
    ask`) or a question asked at once cancels it before it has sent anything. Each
    reads its pieces one request at a time, and a question stops it after the piece
    being read."""

    DELAY = 0.5
    KEPT = 64
    """Messages read and not asked after yet, kept for this many conversations (the
    latest): an older one's cache is likely gone, and its question is sent without."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._sent: set[asyncio.Task[None]] = set()
        """Those past their delay (reading: not cancelled, but stopped after the piece
        being read, and waited for by their conversation's next question)."""
        self._stopped: set[asyncio.Task[None]] = set()
        self._read: dict[str, Message] = {}
        """The messages read (the longest piece each), by conversation, oldest first."""

    def after(self, parts: Parts, state: RunState) -> None:
        """After the turn of `state` answered: read the rest of its passages ahead
        (`rest_for`), if any; else the next turn's opening (`reads_opening`), not held."""
        conversation = state.conversation_id
        read = partial(prefill, parts, conversation)
        pieces = rest_for(parts, state)
        if pieces:
            self.start(conversation, pieces, read)
        elif reads_opening(parts):
            self.start(conversation, [Message.user(PASSAGES)], read, hold=False)

    def start(
        self,
        conversation_id: str,
        pieces: Sequence[Message],
        read: Callable[[Message], Awaitable[bool]],
        *,
        hold: bool = True,
    ) -> None:
        """Read `pieces` (each the one before and more) in the background for
        `conversation_id` (one read at a time each), each with `read`, while it returns
        True and no question has come; the last one read is kept where `hold` (else it
        was only read into the cache: the next question is sent as without it)."""
        earlier = self._tasks.pop(conversation_id, None)
        if earlier is not None:
            earlier.cancel()
        self._read.pop(conversation_id, None)
        task = asyncio.get_running_loop().create_task(
            self._after_delay(conversation_id, list(pieces), read, hold)
        )
        self._tasks[conversation_id] = task
        task.add_done_callback(lambda done: self._forget(conversation_id, done))

    async def _after_delay(
        self,
        conversation_id: str,
        pieces: list[Message],
        read: Callable[[Message], Awaitable[bool]],
        hold: bool,
    ) -> None:
        await asyncio.sleep(self.DELAY)
        task = asyncio.current_task()
        assert task is not None
        self._sent.add(task)
        for piece in pieces:
            if task in self._stopped or not await read(piece) or not hold:
                return
            self._read[conversation_id] = piece
            while len(self._read) > self.KEPT:
                del self._read[next(iter(self._read))]

    async def settle(self, conversation_id: str) -> tuple[Message, ...]:
        """Before a question in `conversation_id`: what its prompt begins with after the
        conversation, the message read ahead for it, as far as it was read (empty:
        nothing, or its read had not begun and is cancelled). Its read under way is
        stopped after the piece being read and waited for (that piece is the start of
        this question's prompt: nothing is read twice); the other conversations' reads
        not begun are cancelled, those under way stopped after their piece."""
        mine = None
        for conversation, task in list(self._tasks.items()):
            if task in self._sent:
                self._stopped.add(task)
                if conversation == conversation_id:
                    mine = task
            else:
                task.cancel()
        if mine is not None:
            await asyncio.wait([mine])
        message = self._read.pop(conversation_id, None)
        return () if message is None else (message,)

    async def aclose(self) -> None:
        """Cancel every read ahead and wait for them to end."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._read.clear()

    def _forget(self, conversation_id: str, task: asyncio.Task[None]) -> None:
        self._sent.discard(task)
        self._stopped.discard(task)
        if self._tasks.get(conversation_id) is task:
            del self._tasks[conversation_id]
        if not task.cancelled() and task.exception() is not None:
            log.info("reading ahead failed: %s", task.exception())
