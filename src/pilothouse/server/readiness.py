"""What `/readyz` says: whether the server can answer, down to its models.

The server is ready when it has started (not starting, not draining) and each copilot
and each gateway route has at least one model that can answer now: the same check,
with the same words, as `pilothouse models` (`models.probe.ReadinessProbe`: a key or
the weights, and for a server-backed model its server answering). Models passed to the
app as objects (tests, embedding code) are taken as ready.
"""

from __future__ import annotations

from typing import Any

from pilothouse.models.probe import ReadinessProbe
from pilothouse.models.readiness import Readiness
from pilothouse.server.context import ServerContext

_PROBE_KEY = "readiness_probe"


def _probe(context: ServerContext) -> ReadinessProbe:
    probe = context.extra.get(_PROBE_KEY)
    if not isinstance(probe, ReadinessProbe):
        probe = ReadinessProbe(context.gateway.settings)
        context.extra[_PROBE_KEY] = probe
    return probe


def _uses(context: ServerContext) -> dict[str, list[str]]:
    """What each copilot and route answers with: "copilot NAME" / "route NAME" -> the
    model ids to check (empty: models given as objects)."""
    uses: dict[str, list[str]] = {}
    for copilot in context.copilots.all():
        uses[f"copilot {copilot.name}"] = list(copilot.model_ids)
    gateway = context.gateway
    for name in gateway.route_names():
        targets = gateway.routes[name].targets
        given = any(t in gateway.models for t in targets)  # an object given: ready
        uses[f"route {name}"] = [] if given else list(targets)
    return uses


async def readiness_report(context: ServerContext) -> tuple[int, dict[str, Any]]:
    """The `/readyz` status code and body."""
    body: dict[str, Any] = {
        "status": context.phase,
        "copilots": context.copilots.names(),
        "routes": context.gateway.route_names(),
    }
    if not context.ready:
        return 503, body
    uses = _uses(context)
    states = await _probe(context).check_many(i for ids in uses.values() for i in ids)
    body["models"] = {i: {"ready": s.ready, "detail": s.detail} for i, s in states.items()}
    unavailable = {
        what: _none_ready(ids, states)
        for what, ids in uses.items()
        if ids and not any(states[i].ready for i in ids)
    }
    if unavailable:
        body["status"] = "unavailable"
        body["unavailable"] = unavailable
        return 503, body
    body["status"] = "ready"
    return 200, body


def _none_ready(ids: list[str], states: dict[str, Readiness]) -> str:
    return "no model can answer: " + "; ".join(f"{i}: {states[i].detail}" for i in ids)
