"""Decisions the runtime takes without the model, when only one outcome of a
decision step is right (copilot/turns.py records them as forced)."""

from __future__ import annotations

from collections.abc import Callable

from pilothouse.copilot.decision_options import CALL_PREFIX, Decision, Options


def forced_decision(offered: Options) -> str | None:
    """Why the runtime decides without the model, when only one outcome is right: a
    question the passages answer and no tool is asked for ("knowledge_first"), a
    request whose id is missing ("missing_id": ask for it), the id asked for given,
    with one tool waiting for it ("resumed": call it), an id given for a lookup or an
    action on it ("given_id": call the tool that takes it; copilot/given_ids.py
    chooses when several do), a question for the state of the user's own things that
    one read-only tool without parameters lists ("their_own": call it); "earlier_id"
    (a request for an action whose id the user gave earlier) is taken by
    copilot/turns.py, which needs the embedder's choice."""
    if offered.knowledge_first:
        return "knowledge_first"
    if offered.must_ask:
        return "missing_id"
    if offered.resumed and len(offered.choices) == 1:
        return "resumed"
    if offered.given:
        return "given_id"
    if offered.listed is not None:
        return "their_own"
    return None


FORCED_DECISIONS: dict[str, Callable[[Options], tuple[Decision, str | None]]] = {
    "knowledge_first": lambda _: ("answer", None),
    "missing_id": lambda _: ("ask", None),
    "resumed": lambda offered: ("call", offered.choices[0].removeprefix(CALL_PREFIX)),
    "given_id": lambda offered: ("call", offered.given[0]),
    "earlier_id": lambda offered: ("call", offered.given_before[0]),
    "their_own": lambda offered: ("call", offered.listed),
}
