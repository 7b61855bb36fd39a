"""What the conformance suite needs from each adapter's test setup."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from pilothouse.config import ProviderSettings, Settings
from pilothouse.models import Model, create_model
from tests.fakes.vendor import FakeVendor


@dataclass
class HarnessSpec:
    """How to stand up one provider against its fake.

    `provider` is the provider name in the model id; `make_fake` builds the fake (whose
    `.app` is served); `settings` gives extra ProviderSettings fields (api_version, ...).
    `features` lists optional behaviours the vendor has: "seed", "mid_stream_error".
    """

    provider: str
    make_fake: Callable[[], FakeVendor]
    model_name: str = "test-model"
    settings: dict[str, Any] = field(default_factory=dict)
    features: frozenset[str] = frozenset()


@dataclass
class Harness:
    spec: HarnessSpec
    fake: Any  # the FakeVendor subclass
    url: str
    home: Any

    @property
    def model_id(self) -> str:
        return f"{self.spec.provider}:{self.spec.model_name}"

    def model(
        self, *, key: str | None = "test-key", timeout_s: float = 5.0, base_url: str | None = None
    ) -> Model:
        provider = ProviderSettings(
            base_url=base_url or self.url,
            api_key=SecretStr(key) if key is not None else None,
            timeout_s=timeout_s,
            **self.spec.settings,
        )
        settings = Settings.from_sources(
            home=self.home,
            environ={},
            file_data={"providers": {self.spec.provider: provider.model_dump()}},
        )
        return create_model(self.model_id, settings)
