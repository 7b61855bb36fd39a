"""Every attempt is a span of its own in the trace: each try of each model, a retry of
the same model and each fallback model alike, with its status (and error) and its
duration, through the Python API and through the gateway (its pass-through targets
and the ones it calls through the model layer).

A call that is retried and then falls back: the faulty upstream answers 503 to both
of its tries, the healthy one answers. A breaker that refuses a target is an attempt
too (it failed at once)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pilothouse.models import collect
from pilothouse.models.attempts import traced_attempts
from pilothouse.models.base import Model
from pilothouse.models.breaker import BreakerBoard, BreakerPolicy
from pilothouse.models.compose import ResiliencePolicy, build_model
from pilothouse.models.retry import RetryPolicy
from pilothouse.models.timeout import TimeoutPolicy
from pilothouse.storage.traces import TraceStore
from pilothouse.tracing import MemorySink, Span, Tracer
from pilothouse.tracing import attributes as A
from pilothouse.types import Message, ModelRequest
from tests.failover.rig import ASK, HEALTHY_TEXT, RETRY, Rig, rig

REQUEST = ModelRequest((Message.user("What is the capital of France?"),))
# Generous limits: a starved test process must not turn a 503 into a timeout (which
# moves on without a retry, and so changes the attempts).
LIMITS = {"connect_s": 10.0, "first_byte_s": 20.0, "idle_s": 20.0, "total_s": 30.0}
RETRIED_THEN_FELL_BACK = [
    ("faulty:m", 1, "failed"),
    ("faulty:m", 2, "failed"),
    ("healthy:m", 1, "completed"),
]


@pytest.fixture
def the_rig(tmp_path: Path) -> Iterator[Rig]:
    with rig(tmp_path) as r:
        r.faulty.mode = "503"
        yield r


def python_chain(the_rig: Rig) -> Model:
    """The Python API's chain (the rig's retries), with the generous limits."""
    policy = ResiliencePolicy(retry=RetryPolicy(**RETRY), timeout=TimeoutPolicy(**LIMITS))
    return build_model(
        ["faulty:m", "healthy:m"],
        the_rig.settings(),
        policy=policy,
        board=BreakerBoard(BreakerPolicy(1000)),
    )


def attempts(spans: list[Span]) -> list[Span]:
    return sorted((s for s in spans if A.ATTEMPT in s.attributes), key=lambda s: s.start_time)


def summary(spans: list[Span]) -> list[tuple[object, object, object]]:
    """(model, which try, status) of each attempt span."""
    keys = (A.REQUEST_MODEL, A.ATTEMPT, A.MODEL_STATUS)
    return [tuple(s.attributes[k] for k in keys) for s in spans]  # type: ignore[misc]


def check_outcomes(spans: list[Span]) -> None:
    for span in spans:
        assert span.duration_s is not None and span.duration_s >= 0
        if span.attributes[A.MODEL_STATUS] == "completed":
            assert span.status == "ok" and span.error is None
        else:
            assert span.status == "error"
            assert span.error_type == "UnavailableError"
            assert "503" in (span.error or "")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_python_api_one_span_per_attempt(the_rig: Rig, stream: bool) -> None:
    model = python_chain(the_rig)
    sink = MemorySink()
    tracer = Tracer([sink])
    with tracer.span("ask") as root, traced_attempts(tracer):
        response = await (collect(model.stream(REQUEST)) if stream else model.complete(REQUEST))
    assert response.text == HEALTHY_TEXT
    spans = attempts(sink.trace(root.trace_id))
    assert summary(spans) == RETRIED_THEN_FELL_BACK
    assert all(s.parent_id == root.span_id for s in spans)
    check_outcomes(spans)
    await model.aclose()


async def test_python_api_without_a_tracer_records_nothing(the_rig: Rig) -> None:
    """No observer installed: the attempts go unrecorded, the answer is the same."""
    sink = MemorySink()
    tracer = Tracer([sink])
    model = python_chain(the_rig)
    with tracer.span("ask") as root:
        response = await model.complete(REQUEST)
    assert response.text == HEALTHY_TEXT
    assert attempts(sink.trace(root.trace_id)) == []
    await model.aclose()


def gateway_traces(the_rig: Rig) -> list[list[Span]]:
    store = TraceStore.for_settings(the_rig.settings())
    try:
        return [store.get_run(run.run_id).spans for run in store.list_runs(limit=50)]
    finally:
        store.close()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("first", ["faulty:m", "modelpath:m"], ids=["passthrough", "modelpath"])
def test_gateway_one_span_per_attempt(the_rig: Rig, stream: bool, first: str) -> None:
    routes = {"chain": {"targets": [first, "healthy:m"], "timeout": LIMITS}}
    with the_rig.gateway(routes) as base, httpx.Client(base_url=base, timeout=60) as http:
        reply = http.post("/v1/chat/completions", json={"model": "chain", "stream": stream, **ASK})
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-pilothouse-model"] == "healthy:m"
    traces = gateway_traces(the_rig)
    assert len(traces) == 1
    spans = attempts(traces[0])
    assert summary(spans) == [(first, 1, "failed"), (first, 2, "failed"), RETRIED_THEN_FELL_BACK[2]]
    check_outcomes(spans)
    (root,) = [s for s in traces[0] if s.parent_id is None]
    assert all(s.parent_id == root.span_id for s in spans)
    assert root.attributes[A.REQUEST_MODEL] == "chain"
    assert root.attributes[A.RESPONSE_MODEL] == "healthy:m"
    assert root.status == "ok"


def test_gateway_records_no_trace_when_nothing_failed(the_rig: Rig) -> None:
    """A request answered by its first try is not traced (the access log has it)."""
    the_rig.faulty.mode = "ok"
    routes = {"chain": {"targets": ["faulty:m", "healthy:m"]}}
    with the_rig.gateway(routes) as base, httpx.Client(base_url=base, timeout=10) as http:
        for stream in (False, True):
            reply = http.post(
                "/v1/chat/completions", json={"model": "chain", "stream": stream, **ASK}
            )
            assert reply.status_code == 200, reply.text
    assert gateway_traces(the_rig) == []


def test_gateway_records_no_trace_of_a_clients_bad_request(the_rig: Rig) -> None:
    """An upstream's 400 is passed back as it is: the client's mistake, not a failure
    of the upstream, so no trace (else every bad client would fill the store)."""
    the_rig.faulty.mode = "400"
    routes = {"chain": {"targets": ["faulty:m", "healthy:m"]}}
    with the_rig.gateway(routes) as base, httpx.Client(base_url=base, timeout=10) as http:
        reply = http.post("/v1/chat/completions", json={"model": "chain", **ASK})
        assert reply.status_code == 400, reply.text
    assert gateway_traces(the_rig) == []


def test_gateway_trace_of_a_request_that_failed(the_rig: Rig) -> None:
    """Every target failed: the request's span is an error, each attempt says why. A
    target whose breaker is open is an attempt that failed at once; a request whose
    only failures were such refusals is not traced (in an outage that would be every
    request: the requests that opened the breaker were)."""
    routes = {
        "alone": {"targets": ["faulty:m"], "timeout": LIMITS},
        "on": {"targets": ["faulty:m", "down:m", "healthy:m"], "timeout": LIMITS},
    }
    with (
        the_rig.gateway(routes, breaker={"failure_threshold": 2, "recovery_s": 60}) as base,
        httpx.Client(base_url=base, timeout=60) as http,
    ):
        for _ in range(2):
            reply = http.post("/v1/chat/completions", json={"model": "alone", **ASK})
            assert reply.status_code == 502, reply.text
        reply = http.post("/v1/chat/completions", json={"model": "on", **ASK})
        assert reply.status_code == 200, reply.text
    failed, answered = sorted(gateway_traces(the_rig), key=lambda spans: spans[0].start_time)
    assert summary(attempts(failed)) == [("faulty:m", 1, "failed"), ("faulty:m", 2, "failed")]
    (root,) = [s for s in failed if s.parent_id is None]
    assert root.status == "error" and "every target failed" in (root.error or "")
    tries = attempts(answered)
    assert summary(tries) == [
        ("faulty:m", 1, "failed"),
        ("down:m", 1, "failed"),
        ("down:m", 2, "failed"),
        ("healthy:m", 1, "completed"),
    ]
    assert tries[0].error_type == "CircuitOpenError"
    assert tries[1].error_type == "UnavailableError"


def test_gateway_trace_of_a_stream_that_broke_after_text(the_rig: Rig) -> None:
    """The answer had started: the attempt that broke is failed, and so is the request."""
    the_rig.faulty.mode = "cut_after_text"
    routes = {"chain": {"targets": ["faulty:m", "healthy:m"]}}
    with the_rig.gateway(routes) as base, httpx.Client(base_url=base, timeout=10) as http:
        reply = http.post("/v1/chat/completions", json={"model": "chain", "stream": True, **ASK})
        assert "stream_interrupted" in reply.text
    (spans,) = gateway_traces(the_rig)
    (attempt,) = attempts(spans)
    assert summary([attempt]) == [("faulty:m", 1, "failed")]
    (root,) = [s for s in spans if s.parent_id is None]
    assert root.status == "error" and root.attributes[A.RESPONSE_MODEL] == "faulty:m"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_the_access_log_names_the_stored_trace(
    the_rig: Rig, caplog: pytest.LogCaptureFixture, stream: bool
) -> None:
    """A request that failed over, and one that failed, are logged with the id of
    their stored trace; one answered by its first try has no trace to name."""
    caplog.set_level(logging.INFO, logger="pilothouse.access")
    routes = {
        "chain": {"targets": ["faulty:m", "healthy:m"], "timeout": LIMITS},
        "alone": {"targets": ["faulty:m"], "timeout": LIMITS},
        "fine": {"targets": ["healthy:m"], "timeout": LIMITS},
    }
    with the_rig.gateway(routes) as base, httpx.Client(base_url=base, timeout=60) as http:
        for model, status in (("chain", 200), ("alone", 502), ("fine", 200)):
            body = {"model": model, "stream": stream, **ASK}
            reply = http.post("/v1/chat/completions", json=body)
            assert reply.status_code == status, reply.text
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "pilothouse.access"]
    logged = {line["model"]: line.get("trace") for line in lines if line["path"] != "/readyz"}
    stored = {
        root.attributes[A.REQUEST_MODEL]: root.trace_id
        for spans in gateway_traces(the_rig)
        for root in spans
        if root.parent_id is None
    }
    assert set(stored) == {"chain", "alone"}
    assert logged == {**stored, "fine": None}
