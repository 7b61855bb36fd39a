"""Every cloud protocol adapter passes the chat-model conformance suite shipped in
`pilothouse.testing.conformance`, against a local server that speaks its vendor's
documented wire format (tests/fakes/). A new provider is added by writing its fake and
a HarnessSpec; the suite then runs against it unchanged."""

from __future__ import annotations

import pytest

from pilothouse.testing.conformance import (
    ADAPTER_CAPABILITIES,
    CHAT_MODELS,
    Check,
    VendorSubject,
    run_check,
)
from tests.models.conformance.conftest import SPECS

CASES = [
    pytest.param(provider, check, id=f"{provider}-{check.name}")
    for provider, spec in SPECS.items()
    for check in CHAT_MODELS.checks_for(ADAPTER_CAPABILITIES | spec.features)
]


@pytest.mark.parametrize(("provider", "check"), CASES)
async def test_adapter(provider: str, check: Check[VendorSubject], vendor: VendorSubject) -> None:
    await run_check(check, vendor)
