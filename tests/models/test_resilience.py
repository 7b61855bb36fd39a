"""The Python path's resilience (issue 11): breakers that see every outcome, unusable
answers counted, retries that never wait in vain, latency that covers failover, and
the gateway's defaults."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pilothouse.errors import (
    CircuitOpenError,
    EmptyAnswerError,
    ModelError,
    ModelTimeoutError,
    RateLimitedError,
    UnavailableError,
)
from pilothouse.models import FunctionModel, ScriptedModel, collect
from pilothouse.models.breaker import BreakerBoard, BreakerPolicy, CircuitBreakerModel
from pilothouse.models.compose import ResiliencePolicy, harden, harden_chain
from pilothouse.models.failures import summarize
from pilothouse.models.fallback import FallbackModel
from pilothouse.models.retry import RetryingModel, RetryPolicy
from pilothouse.models.timeout import NO_LIMITS, TimeoutPolicy
from pilothouse.models.usable import UsableAnswerModel, answer_problem
from pilothouse.server.gateway.routes import RetrySettings, TimeoutSettings
from pilothouse.types import Message, ModelRequest, StreamEnd, TextPart

REQUEST = ModelRequest((Message.user("hi"),))
NO_RETRY = ResiliencePolicy(retry=RetryPolicy(max_attempts=1), timeout=NO_LIMITS)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def open_breaker(board: BreakerBoard, model_id: str) -> None:
    for _ in range(board.policy.failure_threshold):
        board.get(model_id).acquire().failure(UnavailableError("down"))


async def test_a_stream_answered_in_a_chain_closes_the_half_open_circuit() -> None:
    # The chain used to close the answering model's stream while it was still yielding
    # its last event: its breaker saw "caller left", never the success, and the
    # circuit stayed half-open (a copilot's trace showed the answer as GeneratorExit).
    clock = Clock()
    board = BreakerBoard(BreakerPolicy(failure_threshold=1, recovery_s=10), clock)
    open_breaker(board, "p:flaky")
    clock.now += 10
    flaky = CircuitBreakerModel(
        ScriptedModel(["recovered"], model_id="p:flaky"), board.get("p:flaky")
    )
    chain = FallbackModel([flaky, ScriptedModel(["backup"], model_id="p:backup")])
    events = chain.stream(REQUEST)
    async for event in events:
        if isinstance(event, StreamEnd):
            assert event.response.text == "recovered"
            break  # a caller that stops reading at the end
    await events.aclose()  # type: ignore[attr-defined]
    assert board.states()["p:flaky"] == "closed"


async def test_a_probe_is_released_when_the_caller_leaves_mid_stream() -> None:
    clock = Clock()
    board = BreakerBoard(BreakerPolicy(failure_threshold=1, recovery_s=10), clock)
    open_breaker(board, "p:m")
    clock.now += 10
    model = CircuitBreakerModel(
        ScriptedModel(["a long answer", "again"], chunk_size=2), board.get("p:m")
    )
    events = model.stream(REQUEST)
    await anext(events)
    await events.aclose()  # type: ignore[attr-defined]
    assert (await model.complete(REQUEST)).text == "again"  # probed again, and closed
    assert board.states()["p:m"] == "closed"


async def test_a_probe_is_released_when_the_call_is_cancelled() -> None:
    clock = Clock()
    board = BreakerBoard(BreakerPolicy(failure_threshold=1, recovery_s=10), clock)
    open_breaker(board, "p:m")
    clock.now += 10
    slow = ScriptedModel(["slow answer", "ok"], delay_s=5, model_id="p:m")
    model = CircuitBreakerModel(slow, board.get("p:m"))
    call = asyncio.create_task(model.complete(REQUEST))
    await asyncio.sleep(0.05)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    slow.delay_s = 0
    assert (await model.complete(REQUEST)).text == "ok"


async def test_a_blank_answer_counts_against_the_breaker_and_fails_over() -> None:
    board = BreakerBoard(BreakerPolicy(failure_threshold=2, recovery_s=60))
    blank = ScriptedModel(["  ", "\n\n", "never asked"], model_id="p:blank")
    backup = ScriptedModel(["one", "two", "three"], model_id="p:ok")
    chain = FallbackModel(harden_chain([blank, backup], NO_RETRY, board))
    assert [(await chain.complete(REQUEST)).text for _ in range(3)] == ["one", "two", "three"]
    assert len(blank.requests) == 2
    assert board.states()["p:blank"] == "open"


async def test_a_whitespace_start_does_not_commit_a_stream() -> None:
    model = UsableAnswerModel(ScriptedModel([" \n  "], chunk_size=1))
    seen = []
    with pytest.raises(EmptyAnswerError):
        async for event in model.stream(REQUEST):
            seen.append(event)
    assert seen == []  # nothing was passed on: a chain can still move on invisibly


def test_an_answer_cut_to_nothing_by_max_tokens_is_usable() -> None:
    assert answer_problem(Message("assistant", ()), "length") is None
    assert answer_problem(Message("assistant", (TextPart(" "),)), "stop") is not None


async def test_a_failed_half_open_probe_costs_one_attempt() -> None:
    clock = Clock()
    board = BreakerBoard(BreakerPolicy(failure_threshold=1, recovery_s=10), clock)
    inner = ScriptedModel([UnavailableError(str(i)) for i in range(6)], model_id="p:down")
    policy = ResiliencePolicy(retry=RetryPolicy(max_attempts=3, base_delay_s=0), timeout=NO_LIMITS)
    model = harden(inner, policy, board)
    with pytest.raises(UnavailableError):
        await model.complete(REQUEST)
    assert len(inner.requests) == 1  # the breaker opened: no retry into a refusal
    clock.now += 10
    with pytest.raises(UnavailableError):
        await model.complete(REQUEST)  # the probe
    assert len(inner.requests) == 2
    with pytest.raises(CircuitOpenError):
        await model.complete(REQUEST)


async def test_no_retry_after_is_slept_out_before_a_breaker_that_will_refuse() -> None:
    board = BreakerBoard(BreakerPolicy(failure_threshold=1, recovery_s=60))
    inner = ScriptedModel([RateLimitedError("slow down", retry_after=3), "never"], model_id="p:m")
    sleeps = Sleeps()
    model = RetryingModel(CircuitBreakerModel(inner, board.get("p:m")), RetryPolicy(), sleep=sleeps)
    with pytest.raises(RateLimitedError):
        await model.complete(REQUEST)
    assert sleeps.calls == []


@pytest.mark.parametrize(
    "error",
    [RateLimitedError("busy", retry_after=1), ModelTimeoutError("slow")],
    ids=["429", "timeout"],
)
async def test_before_a_fallback_a_rate_limit_or_timeout_moves_on_at_once(
    error: ModelError,
) -> None:
    sleeps = Sleeps()
    inner = ScriptedModel([error, "never"])
    policy = RetryPolicy(max_attempts=3, before_fallback=True)
    with pytest.raises(type(error)):
        await RetryingModel(inner, policy, sleep=sleeps).complete(REQUEST)
    assert sleeps.calls == [] and len(inner.requests) == 1


async def test_a_wait_past_the_deadline_is_not_taken() -> None:
    sleeps = Sleeps()
    inner = ScriptedModel([RateLimitedError("busy", retry_after=20), "never"])
    policy = RetryPolicy(max_attempts=3, max_retry_after_s=60, deadline_s=10)
    with pytest.raises(RateLimitedError):
        await RetryingModel(inner, policy, sleep=sleeps).complete(REQUEST)
    assert sleeps.calls == []


async def test_reported_latency_includes_the_failover() -> None:
    async def slow_failure(request: ModelRequest) -> str:
        await asyncio.sleep(0.2)
        raise UnavailableError("gave up after a while")

    def chain() -> FallbackModel:
        return FallbackModel(
            [
                FunctionModel(slow_failure, model_id="p:slow"),
                ScriptedModel(["fast"], model_id="p:b"),
            ]
        )

    assert (await chain().complete(REQUEST)).latency_s >= 0.2
    assert (await collect(chain().stream(REQUEST))).latency_s >= 0.2


def test_the_python_api_has_the_gateways_defaults() -> None:
    timeouts, retries = TimeoutPolicy(), RetryPolicy()
    gateway = TimeoutSettings()
    assert (timeouts.connect_s, timeouts.first_byte_s, timeouts.idle_s, timeouts.total_s) == (
        gateway.connect_s,
        gateway.first_byte_s,
        gateway.idle_s,
        gateway.total_s,
    )
    assert RetrySettings().policy() == retries
    assert ResiliencePolicy().timeout == timeouts  # build_model's default: limits on


def test_breakers_for_many_ids_are_bounded_keeping_the_unwell_ones() -> None:
    board = BreakerBoard(BreakerPolicy(failure_threshold=1), max_breakers=3)
    open_breaker(board, "p:sick")
    for i in range(10):
        board.get(f"p:client-chose-{i}")
    assert len(board.states()) == 3
    assert board.states()["p:sick"] == "open"


def test_the_final_error_looks_through_open_breakers_to_their_cause() -> None:
    limited = RateLimitedError("busy", retry_after=7)
    refused = CircuitOpenError("open", retry_after=3, cause=RateLimitedError("busy"))
    assert summarize([limited, refused]).cause == "rate_limited"
    assert summarize([limited, refused]).retry_after == 3
    slow = CircuitOpenError("open", cause=ModelTimeoutError("slow"))
    assert summarize([ModelTimeoutError("slow"), slow]).cause == "timeout"
    assert summarize([limited, UnavailableError("down")]).cause == "failed"


async def test_an_empty_board_given_is_the_board_used() -> None:
    # An empty board once read as "no board" (falsy), and the process's was used.
    from pilothouse.config import Settings
    from pilothouse.models.breaker import process_board
    from pilothouse.models.compose import build_model

    board = BreakerBoard(BreakerPolicy(failure_threshold=1))
    settings = Settings.from_sources(home=Path("/nonexistent"), environ={})
    model = build_model(["openai:gpt-4.1-mini"], settings, board=board, policy=NO_RETRY)
    with pytest.raises(ModelError):
        await model.complete(REQUEST)  # no key: fails, and counts
    await model.aclose()
    assert board.states() == {"openai:gpt-4.1-mini": "open"}
    assert process_board().states() == {}


class Embedded(ScriptedModel):
    """Plays a model computed in this process, like the embedded local model."""

    def runs_here(self) -> bool:
        return True


async def test_time_limits_guard_remote_hosts_not_the_embedded_model() -> None:
    # On a busy machine the embedded model's first token can take longer than any
    # limit meant for a hung host: a limit would only cut its answers.
    quick = TimeoutPolicy(first_byte_s=0.05, idle_s=0.05, total_s=0.1)
    policy = ResiliencePolicy(retry=RetryPolicy(max_attempts=1), timeout=quick)
    remote = harden(ScriptedModel(["slow answer"], delay_s=0.2, model_id="p:remote"), policy, None)
    with pytest.raises(ModelTimeoutError):
        await collect(remote.stream(REQUEST))
    here = harden(Embedded(["slow answer"], delay_s=0.2, model_id="local:m"), policy, None)
    assert (await collect(here.stream(REQUEST))).text == "slow answer"
