"""What one public model name resolves to in the gateway (`Chain`): its targets in
order, OpenAI-protocol upstreams relayed byte for byte (passthrough.py) or any other
model through the neutral model layer (`ModelTarget`), and the route's retries,
timeouts and stream continuation. gateway.py builds chains; failover.py answers them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import aiohttp

from pilothouse.models.base import Model
from pilothouse.models.retry import RetryPolicy
from pilothouse.server.gateway.passthrough import PassThroughTarget
from pilothouse.server.gateway.routes import Route, TimeoutSettings


@dataclass
class ModelTarget:
    """Any other model, through the neutral model layer."""

    id: str
    model: Model


Target = PassThroughTarget | ModelTarget


@dataclass
class Chain:
    """What one public model name resolves to."""

    name: str
    targets: list[Target]
    route: Route | None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: TimeoutSettings = field(default_factory=TimeoutSettings)
    json_timeout: aiohttp.ClientTimeout | None = None
    stream_timeout: aiohttp.ClientTimeout | None = None
    continue_streams: bool = False
    rng: random.Random = field(default_factory=random.Random)
