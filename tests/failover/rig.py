"""The fault-injection rig: a faulty upstream and a healthy one on loopback, reached
through the gateway (a routes file) and through the Python API (`build_model`), with
the same short limits on both paths."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pilothouse.config import Settings
from pilothouse.models.base import Model
from pilothouse.models.breaker import BreakerBoard, BreakerPolicy
from pilothouse.models.compose import ResiliencePolicy, build_model
from pilothouse.models.retry import RetryPolicy
from pilothouse.models.timeout import TimeoutPolicy
from pilothouse.server.app import create_app
from pilothouse.testing.loopback import serve_app
from pilothouse.testing.ports import closed_port
from tests.fakes.faulty_upstream import FaultyUpstream
from tests.server.conftest import running

HEALTHY_TEXT = "The healthy upstream answers: Paris."
ASK = {"messages": [{"role": "user", "content": "What is the capital of France?"}]}

# Short limits so that the suite runs in seconds; the same on both paths.
LIMITS = {"connect_s": 1.0, "first_byte_s": 0.6, "idle_s": 0.6, "total_s": 1.5}
RETRY: dict[str, Any] = {
    "max_attempts": 2,
    "base_delay_s": 0.01,
    "max_delay_s": 0.05,
    "max_retry_after_s": 5,
}


@dataclass
class Rig:
    faulty: FaultyUpstream
    healthy: FaultyUpstream
    faulty_url: str
    healthy_url: str
    home: Path
    extra_providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """More providers (name -> config.toml fields), for the chains a benchmark builds."""
    extra_settings: dict[str, Any] = field(default_factory=dict)
    """More config.toml sections (e.g. `local`)."""

    @property
    def provider_settings(self) -> dict[str, Any]:
        return {
            "faulty": {"preset": "openai", "base_url": f"{self.faulty_url}/v1"},
            "healthy": {"preset": "openai", "base_url": f"{self.healthy_url}/v1"},
            # the faulty upstream again, through the gateway's neutral model path (a
            # profile without native tools is not passed through)
            "modelpath": {
                "preset": "openai",
                "base_url": f"{self.faulty_url}/v1",
                "profile": {"native_tools": False},
            },
            # the healthy upstream again, as a vLLM host: it can continue an answer
            "continuing": {"preset": "vllm", "base_url": f"{self.healthy_url}/v1"},
            "down": {"preset": "openai", "base_url": f"http://127.0.0.1:{closed_port()}/v1"},
            **self.extra_providers,
        }

    def settings(self) -> Settings:
        return Settings.from_sources(
            home=self.home,
            file_data={**self.extra_settings, "providers": self.provider_settings},
            environ={},
        )

    def model(self, ids: list[str], *, board: BreakerBoard | None = None, **policy: Any) -> Model:
        """The Python API's chain over `ids`, with the rig's limits."""
        chosen = ResiliencePolicy(
            retry=RetryPolicy(**RETRY),
            timeout=TimeoutPolicy(**LIMITS),
            **policy,
        )
        return build_model(
            ids, self.settings(), policy=chosen, board=board or BreakerBoard(BreakerPolicy(1000))
        )

    @contextmanager
    def gateway(
        self,
        routes: dict[str, Any],
        *,
        breaker: dict[str, Any] | None = None,
        models: dict[str, Model] | None = None,
    ) -> Iterator[str]:
        """The gateway serving `routes` with the rig's limits; yields its base URL."""
        spec = {
            "providers": self.provider_settings,
            "defaults": {"retry": RETRY, "timeout": LIMITS},
            "breaker": breaker or {"failure_threshold": 1000, "recovery_s": 30},
            "routes": routes,
        }
        app = create_app(self.settings(), no_auth=True, routes=spec, models=models)
        with running(app) as (base, _):
            yield base


@contextmanager
def rig(home: Path, **faulty: Any) -> Iterator[Rig]:
    with ExitStack() as stack:
        bad = FaultyUpstream(name="faulty", **faulty)
        good = FaultyUpstream(name="healthy", text=HEALTHY_TEXT)
        bad_url = stack.enter_context(serve_app(bad))
        good_url = stack.enter_context(serve_app(good))
        yield Rig(bad, good, bad_url, good_url, home)


def sse_payloads(raw: str) -> list[str]:
    return [line[6:] for line in raw.splitlines() if line.startswith("data: ")]
