"""The test doubles and every model wrapper pass the chat-model conformance suite's
contract checks: each wraps a double that plays the suite's script."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pilothouse.copilot.prompting import PromptedModel
from pilothouse.copilot.traced_model import TracedModel
from pilothouse.models.base import Model
from pilothouse.models.breaker import BreakerBoard, CircuitBreakerModel
from pilothouse.models.emulation import EmulatedToolsModel
from pilothouse.models.fallback import FallbackModel
from pilothouse.models.retry import RetryingModel, RetryPolicy
from pilothouse.models.testing import ScriptedModel
from pilothouse.models.timeout import TimeoutModel, TimeoutPolicy
from pilothouse.models.usable import UsableAnswerModel
from pilothouse.testing.conformance import (
    CHAT_MODELS,
    Check,
    ScriptSubject,
    envelope_replay,
    replay,
    run_check,
    turns_of,
)
from pilothouse.testing.wire import Step
from pilothouse.tracing import Tracer
from pilothouse.types import Message

TYPED = frozenset({"tools", "parallel_tools", "typed_errors"})


def scripted(steps: tuple[Step, ...]) -> Model:
    return ScriptedModel(turns_of(steps))


def head(family: str) -> list[Message]:
    return [Message.system(f"Instructions for {family}.")]


BUILDERS: dict[str, tuple[Callable[[tuple[Step, ...]], Model], frozenset[str]]] = {
    "ScriptedModel": (scripted, TYPED),
    "FunctionModel": (lambda steps: replay(turns_of(steps)), TYPED),
    # a chain's own failure is AllModelsFailedError, whatever the models raised
    "FallbackModel": (
        lambda steps: FallbackModel([scripted(steps)]),
        frozenset({"tools", "parallel_tools"}),
    ),
    "RetryingModel": (
        lambda steps: RetryingModel(
            replay(turns_of(steps)),
            RetryPolicy(max_attempts=2, base_delay_s=0.0, max_retry_after_s=0.01),
        ),
        TYPED,
    ),
    "CircuitBreakerModel": (
        lambda steps: CircuitBreakerModel(scripted(steps), BreakerBoard().get("test:scripted")),
        TYPED,
    ),
    "TimeoutModel": (
        lambda steps: TimeoutModel(scripted(steps), TimeoutPolicy(10.0, 5.0, 5.0)),
        TYPED,
    ),
    "EmulatedToolsModel": (
        lambda steps: EmulatedToolsModel(envelope_replay(turns_of(steps))),
        TYPED,
    ),
    "UsableAnswerModel": (lambda steps: UsableAnswerModel(scripted(steps)), TYPED),
    "PromptedModel": (lambda steps: PromptedModel(scripted(steps), head), TYPED),
    "TracedModel": (lambda steps: TracedModel(scripted(steps), Tracer()), TYPED),
}


CASES = [
    pytest.param(name, check, id=f"{name}-{check.name}")
    for name, (_, capabilities) in sorted(BUILDERS.items())
    for check in CHAT_MODELS.checks_for(capabilities)
]


@pytest.mark.parametrize(("name", "check"), CASES)
async def test_double_or_wrapper(name: str, check: Check[ScriptSubject]) -> None:
    build, capabilities = BUILDERS[name]
    await run_check(check, ScriptSubject(build, capabilities))


async def test_the_suite_runs_in_one_call_and_reports_each_check() -> None:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def subjects():  # type: ignore[no-untyped-def]
        yield ScriptSubject(scripted, TYPED)

    report = await CHAT_MODELS.validate(subjects)
    report.raise_for_failures()
    assert "a_stream_cut_midway_ends_with_an_error_event" in report.passed
    assert ("request_options_are_mapped", "request_options_are_mapped needs wire") in (
        report.skipped
    )

    @asynccontextmanager
    async def broken():  # type: ignore[no-untyped-def]
        # a "model" that swallows a cut stream: the suite must say so
        yield ScriptSubject(lambda steps: ScriptedModel(["The capital is"] * 3), TYPED)

    report = await CHAT_MODELS.validate(
        broken, only={"a_stream_cut_midway_ends_with_an_error_event"}
    )
    assert not report.ok and "never look complete" in str(report)
