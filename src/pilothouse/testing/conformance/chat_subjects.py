"""What the chat-model suite checks: a model that plays a script of neutral steps
(`pilothouse.testing.wire`), wrapped with the capabilities it has.

- `VendorSubject`: a protocol adapter created through `create_model` against a fake
  of its vendor's wire format, served on loopback (`HarnessSpec` says how to stand it
  up). The whole suite applies, wire-level checks included.
- `ScriptSubject`: any model built from the steps in-process: the test doubles
  (`ScriptedModel`, `FunctionModel`) and every wrapper around them (fallback, retry,
  circuit breaker, timeout, emulated tools, ...). The contract checks apply.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from pilothouse.config import ProviderSettings, Settings
from pilothouse.errors import (
    AuthenticationError,
    BadRequestError,
    ModelError,
    RateLimitedError,
    UnavailableError,
)
from pilothouse.models.base import Model
from pilothouse.models.registry import create_model
from pilothouse.models.testing import BreakAfter, Turn
from pilothouse.testing.loopback import serve_app
from pilothouse.testing.wire import CutStream, Fail, FakeVendor, Reply, Step
from pilothouse.types import Message, ModelRequest, Part, TextPart, ToolCallPart

# What the checks may ask of a subject, beyond what every chat model must do.
WIRE = "wire"  # a vendor fake: requests can be inspected, Echo/Stall/Malformed played
AUTH = "auth"  # the host checks an API key
TYPED_ERRORS = "typed_errors"  # errors keep their type (a 503 is UnavailableError, ...)
TOOLS = "tools"
PARALLEL_TOOLS = "parallel_tools"
FINISH_REASONS = "finish_reasons"  # finish reasons other than stop/tool_calls (length)
USAGE = "usage"  # the token counts the host reported, as they are
IMAGES = "images"
STRUCTURED_OUTPUT = "structured_output"
SEED = "seed"
MID_STREAM_ERROR = "mid_stream_error"  # the vendor documents an in-stream error event

ADAPTER_CAPABILITIES = frozenset(
    {WIRE, AUTH, TYPED_ERRORS, TOOLS, PARALLEL_TOOLS, FINISH_REASONS, USAGE, IMAGES}
    | {STRUCTURED_OUTPUT}
)


@dataclass
class HarnessSpec:
    """How to stand up one provider against its fake: `provider` is the provider name
    in the model id, `make_fake` builds the fake (a `FakeVendor` whose `.app` is
    served), `settings` gives extra `[providers.NAME]` fields (api_version, ...),
    `features` the optional behaviours the vendor has (`seed`, `mid_stream_error`)."""

    provider: str
    make_fake: Callable[[], FakeVendor]
    model_name: str = "test-model"
    settings: dict[str, Any] = field(default_factory=dict)
    features: frozenset[str] = frozenset()


@dataclass
class VendorSubject:
    """A protocol adapter against its vendor's fake, served at `url`."""

    spec: HarnessSpec
    fake: Any  # the FakeVendor subclass: requests, headers and paths it recorded
    url: str
    home: Path

    @property
    def capabilities(self) -> frozenset[str]:
        return ADAPTER_CAPABILITIES | self.spec.features

    @property
    def model_id(self) -> str:
        return f"{self.spec.provider}:{self.spec.model_name}"

    def model(
        self,
        *steps: Step,
        key: str | None = "test-key",
        timeout_s: float = 5.0,
        base_url: str | None = None,
    ) -> Model:
        """The adapter, created as users create it, with `steps` queued at the fake."""
        self.fake.push(*steps)
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

    @classmethod
    @asynccontextmanager
    async def serve(cls, spec: HarnessSpec, home: Path) -> AsyncIterator[VendorSubject]:
        """A fresh fake served on loopback for the time of the block."""
        fake = spec.make_fake()
        with serve_app(fake.app) as url:
            yield cls(spec, fake, url, home)


def error_for(step: Fail) -> ModelError:
    """The typed error a host's HTTP failure becomes."""
    if step.status == 429:
        retry = float(step.retry_after) if step.retry_after is not None else None
        return RateLimitedError(step.message, status=429, retry_after=retry)
    if step.status in (401, 403):
        return AuthenticationError(step.message, status=step.status)
    if step.status >= 500:
        return UnavailableError(step.message, status=step.status)
    return BadRequestError(step.message, status=step.status)


def _reply_message(step: Reply) -> Message:
    parts: list[Part] = [TextPart(step.text)] if step.text else []
    parts += [ToolCallPart(c.id, c.name, dict(c.arguments)) for c in step.tool_calls]
    return Message("assistant", tuple(parts))


def turns_of(steps: Sequence[Step]) -> list[Turn]:
    """Steps as the turns of a `ScriptedModel`: replies, errors raised before content,
    and streams cut after content (`BreakAfter`)."""
    turns: list[Turn] = []
    for step in steps:
        if isinstance(step, Reply):
            turns.append(_reply_message(step))
        elif isinstance(step, Fail):
            turns.append(error_for(step))
        elif isinstance(step, CutStream):
            turns.append(BreakAfter(step.text, UnavailableError("the connection dropped")))
        else:
            raise ValueError(f"{type(step).__name__} needs a wire-format fake")
    return turns


def _as_envelope(turn: Turn) -> Turn:
    if isinstance(turn, Message) and turn.tool_calls:
        calls = [{"name": c.name, "arguments": c.arguments} for c in turn.tool_calls]
        return json.dumps({"tool_calls": calls})
    if isinstance(turn, Message):
        return json.dumps({"answer": turn.text})
    if isinstance(turn, BreakAfter):
        return BreakAfter(json.dumps({"answer": turn.text})[: -len('"}')], turn.error)
    return turn


def envelope_replay(turns: Sequence[Turn], model_id: str = "test:scripted") -> Model:
    """A `FunctionModel` that answers as a model without native tools does under tool
    emulation: where the request asks for the tool envelope, each turn comes as the
    envelope's JSON (`{"answer": ...}` or `{"tool_calls": [...]}`), else as it is."""
    from pilothouse.models.emulation import ENVELOPE_NAME
    from pilothouse.models.testing import FunctionModel

    pending = list(turns)

    def answer(request: ModelRequest) -> Turn:
        if not pending:
            raise AssertionError(f"{model_id}: the script has no turn left for this call")
        turn = pending.pop(0)
        schema = request.output_schema
        return _as_envelope(turn) if schema and schema.name == ENVELOPE_NAME else turn

    return FunctionModel(answer, model_id=model_id)


@dataclass
class ScriptSubject:
    """A model built in-process from the steps: `build(steps)` returns it (for example
    `lambda steps: RetryingModel(ScriptedModel(turns_of(steps)), policy)`)."""

    build: Callable[[tuple[Step, ...]], Model]
    capabilities: frozenset[str] = frozenset({TOOLS, PARALLEL_TOOLS, TYPED_ERRORS})
    model_id: str = "test:scripted"

    def model(self, *steps: Step, **_options: Any) -> Model:
        return self.build(steps)


def replay(turns: Sequence[Turn], model_id: str = "test:scripted") -> Model:
    """A `FunctionModel` that answers with `turns` in order, giving an error turn again
    to every retry (a wrapper that retries sees the failure persist)."""
    from pilothouse.models.testing import FunctionModel

    pending = list(turns)

    def answer(_request: Any) -> Turn:
        if not pending:
            raise AssertionError(f"{model_id}: the script has no turn left for this call")
        turn = pending[0]
        if not isinstance(turn, ModelError):
            pending.pop(0)
        return turn

    return FunctionModel(answer, model_id=model_id)
