"""The gateway's breakers and final errors under faults (issue 11): a half-open probe
is given back whatever the client does, unusable answers count, the status does not
change when the breakers open, no Retry-After is slept out in vain, JSON answers have
the total limit, and a broken stream is logged as one."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import httpx
import pytest

from pilothouse.config import Settings
from pilothouse.server.gateway.gateway import Gateway
from pilothouse.server.gateway.routes import RoutesFile
from tests.failover.rig import ASK, HEALTHY_TEXT, rig, sse_payloads


@pytest.mark.parametrize(
    ("target", "stream", "leaves"),
    [
        ("faulty:m", True, "mid-stream"),
        ("faulty:m", False, "before the answer"),
        ("faulty:m", True, "before the first byte"),
        ("modelpath:m", False, "before the answer"),
        ("modelpath:m", True, "before the first byte"),
        ("modelpath:m", True, "mid-stream"),
    ],
)
def test_a_probe_is_released_whenever_the_client_leaves(
    tmp_path: Path, target: str, stream: bool, leaves: str
) -> None:
    # The fast path (faulty:m) and the neutral model path (modelpath:m, the same
    # upstream through a profile without native tools) alike: a probe whose client
    # left is given back, so the next request probes the recovered upstream.
    # Before: the fast path never gave the probe back when the client left mid-stream,
    # and the recovered upstream was never called again ("next probe in 0.0s" forever).
    with (
        rig(tmp_path, stall_s=5.0) as r,
        r.gateway(
            {"only": {"targets": [target]}},
            breaker={"failure_threshold": 1, "recovery_s": 0.2},
        ) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        r.faulty.mode = "500"
        assert http.post("/v1/chat/completions", json={"model": "only", **ASK}).status_code == 502
        time.sleep(0.3)  # half-open: the next request is the probe
        body = {"model": "only", "stream": stream, **ASK}
        if leaves == "mid-stream":
            r.faulty.mode = "stall_after_text"
            with http.stream("POST", "/v1/chat/completions", json=body) as reply:
                assert reply.status_code == 200
                next(reply.iter_raw())  # the answer started; the client leaves
        else:
            r.faulty.mode = "stall"  # nothing comes: the client gives up first
            with pytest.raises(httpx.ReadTimeout):
                http.post("/v1/chat/completions", json=body, timeout=0.3)
        asked = len(r.faulty.requests)
        r.faulty.mode = "ok"
        time.sleep(0.3)
        answer = http.post("/v1/chat/completions", json={"model": "only", **ASK})
        assert answer.status_code == 200, answer.text
        assert len(r.faulty.requests) == asked + 1


@pytest.mark.parametrize("mode", ["blank", "empty_200", "malformed", "error_200"])
def test_unusable_answers_count_against_the_breaker(tmp_path: Path, mode: str) -> None:
    with (
        rig(tmp_path, mode=mode) as r,
        r.gateway(
            {"chain": {"targets": ["faulty:m", "healthy:m"]}},
            breaker={"failure_threshold": 2, "recovery_s": 60},
        ) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        for _ in range(4):
            reply = http.post("/v1/chat/completions", json={"model": "chain", **ASK})
            assert reply.json()["choices"][0]["message"]["content"] == HEALTHY_TEXT
        # two unusable answers opened the circuit (retries count: 2 attempts each)
        assert len(r.faulty.requests) == 2


@pytest.mark.parametrize(
    ("mode", "status"), [("429", 429), ("stall", 504)], ids=["rate-limited", "timed-out"]
)
def test_the_status_does_not_change_when_the_breakers_open(
    tmp_path: Path, mode: str, status: int
) -> None:
    # Before: 429 with Retry-After (or 504) until the breakers opened, then 502.
    with rig(tmp_path, mode=mode, retry_after="7", stall_s=5.0) as r:
        r.healthy.mode = mode
        r.healthy.retry_after = "3"
        with (
            r.gateway(
                {"chain": {"targets": ["faulty:m", "healthy:m"]}},
                breaker={"failure_threshold": 1, "recovery_s": 60},
            ) as base,
            httpx.Client(base_url=base, timeout=20) as http,
        ):
            replies = [
                http.post("/v1/chat/completions", json={"model": "chain", **ASK}) for _ in range(3)
            ]
    assert [reply.status_code for reply in replies] == [status] * 3
    assert "CircuitOpenError" in replies[-1].json()["error"]["message"]  # the breakers said it
    for reply in replies:  # the body names each target's failure
        message = reply.json()["error"]["message"]
        assert "faulty:m" in message and "healthy:m" in message, message
    if status == 429:
        assert all(1 <= int(reply.headers["retry-after"]) <= 60 for reply in replies)
        assert replies[0].headers["retry-after"] == "3"  # the smallest wait


def test_no_retry_after_is_slept_out_before_an_open_breaker(tmp_path: Path) -> None:
    # Before: the retry slept out the Retry-After, then the open breaker refused it.
    with (
        rig(tmp_path, mode="429", retry_after="30") as r,
        r.gateway(
            {"only": {"targets": ["faulty:m"], "retry": {"max_retry_after_s": 60}}},
            breaker={"failure_threshold": 1, "recovery_s": 60},
        ) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        reply = http.post("/v1/chat/completions", json={"model": "only", **ASK})
    assert reply.status_code == 429
    assert len(r.faulty.requests) == 1


def test_a_json_answer_has_the_total_limit_not_the_first_byte_one(tmp_path: Path) -> None:
    # Before: a JSON answer slower than first_byte_s got a 504 (or failed over) and the
    # upstream was asked twice; a JSON answer sends nothing before it is complete.
    with (
        rig(tmp_path, mode="slow_headers", delay_s=1.0) as r,
        r.gateway(
            {
                "only": {
                    "targets": ["faulty:m"],
                    "timeout": {"first_byte_s": 0.3, "total_s": 5.0},
                }
            }
        ) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        reply = http.post("/v1/chat/completions", json={"model": "only", **ASK})
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"] == r.faulty.text
    assert len(r.faulty.requests) == 1


def test_a_broken_stream_is_logged_as_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pilothouse.access")
    with (
        rig(tmp_path, mode="cut_after_text") as r,
        r.gateway({"only": {"targets": ["faulty:m"]}}) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        body = {"model": "only", "stream": True, **ASK}
        reply = http.post("/v1/chat/completions", json=body)
        events = sse_payloads(reply.text)
        assert json.loads(events[-1])["error"]["code"] == "stream_interrupted"
    lines = [
        json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "pilothouse.access"
    ]
    chat = [line for line in lines if line["path"] == "/v1/chat/completions"]
    assert chat[-1]["status"] == 200 and chat[-1]["error"] == "stream_interrupted"


def test_breakers_for_client_supplied_ids_are_bounded(tmp_path: Path) -> None:
    settings = Settings.from_sources(home=tmp_path / "h", environ={})
    gateway = Gateway(settings, RoutesFile())
    limit = gateway.board.max_breakers
    for i in range(limit + 500):
        assert gateway.resolve(f"openai:client-chose-{i}") is not None
    assert len(gateway.board.states()) == limit
