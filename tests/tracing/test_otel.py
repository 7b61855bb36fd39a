"""OpenTelemetry export: the GenAI mapping, and spans received by a real OTLP/HTTP
receiver on 127.0.0.1 (protobuf bodies decoded with opentelemetry-proto)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.storage.tracer import open_tracer
from pilothouse.storage.traces import TraceStore
from pilothouse.testing.loopback import serve_app
from pilothouse.tracing import MemorySink, Span, Tracer
from pilothouse.tracing import attributes as attr
from pilothouse.tracing.genai import genai_span, otel_value, split_model_id
from pilothouse.tracing.otel import (
    OtelSink,
    OtelUnavailableError,
    capture_content_enabled,
    otlp_traces_endpoint,
)
from tests.tracing.otlp_receiver import OtlpReceiver
from tests.tracing.sample import ANSWER, QUESTION, SYSTEM, record_sample_run

SPAN_KIND_INTERNAL, SPAN_KIND_CLIENT = 1, 3
STATUS_UNSET, STATUS_ERROR = 0, 2


@pytest.fixture
def receiver() -> Iterator[tuple[OtlpReceiver, str]]:
    fake = OtlpReceiver()
    with serve_app(fake.app) as url:
        yield fake, url


async def sample_spans(fail_tool: bool = False) -> list[Span]:
    sink = MemorySink()
    await record_sample_run(Tracer([sink]), fail_tool=fail_tool)
    return sink.spans


# --- configuration ----------------------------------------------------------------


def test_endpoint_from_the_standard_variables() -> None:
    assert otlp_traces_endpoint({}) is None
    assert otlp_traces_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}) == (
        "http://c:4318/v1/traces"
    )
    assert (
        otlp_traces_endpoint(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:9/custom",
            }
        )
        == "http://t:9/custom"
    )
    assert (
        otlp_traces_endpoint(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}
        )
        is None
    )
    assert not capture_content_enabled({})
    assert capture_content_enabled({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "True"})
    assert capture_content_enabled(
        {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only"}
    )


def test_grpc_protocol_is_refused_with_a_clear_message() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
    }
    with pytest.raises(OtelUnavailableError, match="http/protobuf"):
        OtelSink.from_environ(env)


def test_split_model_id() -> None:
    assert split_model_id("openai:gpt-4.1") == ("openai", "gpt-4.1")
    assert split_model_id("local:qwen2.5-coder-1.5b") == ("local", "qwen2.5-coder-1.5b")
    assert split_model_id("gpt-4.1") == (None, "gpt-4.1")


def test_otel_values() -> None:
    assert otel_value([1, 2.5]) == [1.0, 2.5]
    assert otel_value(["a", "b"]) == ["a", "b"]
    assert otel_value([1, "a"]) == '[1, "a"]'
    assert otel_value({"a": 1}) == '{"a": 1}'
    assert otel_value(None) is None


# --- the mapping ------------------------------------------------------------------


async def test_genai_mapping_without_content() -> None:
    spans = await sample_spans()
    mapped = [genai_span(s) for s in spans]
    names = [m.name for m in mapped]
    assert names == [
        "invoke_agent helpdesk",
        "retrieval handbook",
        "chat gpt-4.1-mini",
        "open_ticket",
        "execute_tool open_ticket",
        "chat gpt-4.1-mini",
    ]
    run, retrieval, first, approval, tool, final = mapped
    assert run.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert run.attributes["gen_ai.agent.name"] == "helpdesk"
    assert run.attributes["gen_ai.conversation.id"] == "conv-42"
    assert first.kind == "client"
    assert first.attributes["gen_ai.provider.name"] == "anthropic"  # the one that answered
    assert first.attributes["gen_ai.request.model"] == "gpt-4.1-mini"
    assert first.attributes["gen_ai.response.model"] == "claude-sonnet-4-5"
    assert first.attributes["pilothouse.response.model"] == "anthropic:claude-sonnet-4-5"
    assert first.attributes["gen_ai.usage.input_tokens"] == 310
    assert first.attributes["gen_ai.usage.cache_read.input_tokens"] == 100
    assert first.attributes["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert first.attributes["gen_ai.request.temperature"] == 0.2
    assert first.attributes["gen_ai.request.max_tokens"] == 512
    assert first.events[0][0] == "fallback"
    assert final.attributes["gen_ai.provider.name"] == "openai"
    assert retrieval.attributes["gen_ai.operation.name"] == "retrieval"
    assert retrieval.attributes["gen_ai.data_source.id"] == "handbook"
    assert retrieval.attributes["gen_ai.request.top_k"] == 4
    assert retrieval.attributes["pilothouse.retrieval.scores"] == [0.83, 0.41]
    assert tool.attributes["gen_ai.tool.name"] == "open_ticket"
    assert tool.attributes["gen_ai.tool.call.id"] == "call_1"
    assert approval.attributes["pilothouse.approval.decision"] == "approved"
    content_keys = {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.retrieval.query.text",
        "gen_ai.retrieval.documents",
        attr.REQUEST_MESSAGES,
        attr.RESPONSE_MESSAGE,
        attr.RUN_QUESTION,
        attr.RUN_ANSWER,
    }
    for span in mapped:
        assert not content_keys & set(span.attributes), span.name
    assert QUESTION not in json.dumps([m.attributes for m in mapped])


async def test_genai_mapping_with_content() -> None:
    spans = await sample_spans()
    run, retrieval, first, _, tool, final = (genai_span(s, capture_content=True) for s in spans)
    assert json.loads(str(first.attributes["gen_ai.system_instructions"])) == [
        {"type": "text", "content": SYSTEM}
    ]
    assert json.loads(str(first.attributes["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": QUESTION}]}
    ]
    assert json.loads(str(first.attributes["gen_ai.output.messages"])) == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": "call_1",
                    "name": "open_ticket",
                    "arguments": {"title": "VPN token"},
                }
            ],
            "finish_reason": "tool_calls",
        }
    ]
    second_input = json.loads(str(final.attributes["gen_ai.input.messages"]))
    assert second_input[-1] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": "call_1", "response": "T-7"}],
    }
    assert json.loads(str(tool.attributes["gen_ai.tool.call.arguments"])) == {
        "title": "VPN token",
        "api_key": "[REDACTED]",
    }
    assert tool.attributes["gen_ai.tool.call.result"] == "T-7"
    assert retrieval.attributes["gen_ai.retrieval.query.text"] == QUESTION
    documents = json.loads(str(retrieval.attributes["gen_ai.retrieval.documents"]))
    assert documents[0]["id"] == "vpn#3" and documents[0]["score"] == 0.83
    assert documents[0]["metadata"] == {
        "source": "vpn-guide.pdf",
        "page": 4,
        "heading": "Resetting",
    }
    assert (
        json.loads(str(run.attributes["gen_ai.output.messages"]))[0]["parts"][0]["content"]
        == ANSWER
    )


async def test_a_failed_tool_becomes_an_error_span() -> None:
    spans = await sample_spans(fail_tool=True)
    tool = genai_span(next(s for s in spans if s.kind == "tool"))
    assert tool.error == "ticket service unreachable"
    assert tool.attributes["error.type"] == "ConnectionError"


def test_local_models_are_internal_spans() -> None:
    span = Span("a" * 32, "b" * 16, None, "chat", "model")
    span.set(attr.REQUEST_MODEL, "local:qwen2.5-coder-1.5b")
    mapped = genai_span(span)
    assert mapped.kind == "internal"
    assert mapped.name == "chat qwen2.5-coder-1.5b"
    assert mapped.attributes["gen_ai.provider.name"] == "local"


# --- end to end against a real OTLP/HTTP receiver ----------------------------------


async def test_spans_arrive_at_an_otlp_receiver(receiver: tuple[OtlpReceiver, str]) -> None:
    fake, url = receiver
    sink = OtelSink.from_environ(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": url,
            "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme,authorization=Bearer%20collector-key",
            "OTEL_SERVICE_NAME": "helpdesk-prod",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
        }
    )
    tracer = Tracer([sink])
    run = await record_sample_run(tracer, fail_tool=True)
    assert sink.flush(10)
    tracer.close()

    received = fake.by_name()
    assert not fake.rejected
    assert len(fake.spans) == 6
    assert set(received) == {
        "invoke_agent helpdesk",
        "retrieval handbook",
        "chat gpt-4.1-mini",
        "open_ticket",
        "execute_tool open_ticket",
    }
    assert {s.trace_id for s in fake.spans} == {run.trace_id}
    root = received["invoke_agent helpdesk"]
    assert root.span_id == run.span_id and root.parent_id is None
    assert all(s.parent_id == run.span_id for s in fake.spans if s is not root)
    assert root.resource["service.name"] == "helpdesk-prod"
    assert root.resource["deployment.environment"] == "test"
    assert root.scope == "pilothouse"
    assert fake.headers[0]["x-tenant"] == "acme"
    assert fake.headers[0]["authorization"] == "Bearer collector-key"

    chats = [s for s in fake.spans if s.name == "chat gpt-4.1-mini"]
    first = min(chats, key=lambda s: s.start_ns)
    assert first.kind == SPAN_KIND_CLIENT
    assert first.attributes["gen_ai.operation.name"] == "chat"
    assert first.attributes["gen_ai.provider.name"] == "anthropic"
    assert first.attributes["gen_ai.request.model"] == "gpt-4.1-mini"
    assert first.attributes["gen_ai.response.model"] == "claude-sonnet-4-5"
    assert first.attributes["gen_ai.usage.input_tokens"] == 310
    assert first.attributes["gen_ai.usage.output_tokens"] == 22
    assert first.attributes["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert first.attributes["gen_ai.request.temperature"] == 0.2
    assert first.attributes["pilothouse.usage.cost_usd"] == 0.0012
    assert first.events[0] == ("fallback", {"from": "openai:gpt-4.1-mini", "error": "rate limited"})
    assert first.end_ns >= first.start_ns > 0
    assert "gen_ai.input.messages" not in first.attributes  # content is opt-in

    tool = received["execute_tool open_ticket"]
    assert tool.kind == SPAN_KIND_INTERNAL
    assert tool.attributes["gen_ai.tool.name"] == "open_ticket"
    assert tool.attributes["gen_ai.tool.call.id"] == "call_1"
    assert tool.attributes["error.type"] == "ConnectionError"
    assert tool.status_code == STATUS_ERROR
    assert tool.status_message == "ticket service unreachable"
    assert "gen_ai.tool.call.arguments" not in tool.attributes
    assert root.status_code == STATUS_UNSET
    assert root.attributes["gen_ai.agent.name"] == "helpdesk"
    retrieval = received["retrieval handbook"]
    assert retrieval.attributes["gen_ai.operation.name"] == "retrieval"
    assert retrieval.attributes["pilothouse.retrieval.top_score"] == 0.83
    every_value = json.dumps([s.attributes for s in fake.spans])
    assert QUESTION not in every_value and "sk-should-not-leak" not in every_value


async def test_content_is_exported_when_opted_in(receiver: tuple[OtlpReceiver, str]) -> None:
    fake, url = receiver
    sink = OtelSink.from_environ(
        {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{url}/v1/traces",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
        }
    )
    tracer = Tracer([sink])
    await record_sample_run(tracer)
    tracer.close()
    received = fake.by_name()
    root = received["invoke_agent helpdesk"]
    assert root.resource["service.name"] == "pilothouse"
    messages = json.loads(root.attributes["gen_ai.input.messages"])
    assert messages[0]["parts"][0]["content"] == QUESTION
    chats = sorted(
        (s for s in fake.spans if s.name == "chat gpt-4.1-mini"), key=lambda s: s.start_ns
    )
    assert json.loads(chats[0].attributes["gen_ai.system_instructions"])[0]["content"] == SYSTEM
    output = json.loads(chats[1].attributes["gen_ai.output.messages"])
    assert output[0]["parts"][0] == {"type": "text", "content": ANSWER}
    assert output[0]["finish_reason"] == "stop"
    tool = received["execute_tool open_ticket"]
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"])["api_key"] == "[REDACTED]"
    assert tool.attributes["gen_ai.tool.call.result"] == "T-7"


def test_an_unreachable_collector_does_not_break_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from pilothouse.testing.ports import closed_port

    sink = OtelSink(
        endpoint=f"http://127.0.0.1:{closed_port()}/v1/traces", timeout_s=1, batch=False
    )
    tracer = Tracer([sink, memory := MemorySink()])
    with caplog.at_level(logging.ERROR), tracer.span("run", kind="run"):
        pass
    assert [s.name for s in memory.spans] == ["run"]
    tracer.close()


# --- wiring -----------------------------------------------------------------------


def test_open_tracer_stores_and_exports_when_configured(
    tmp_path: Path, receiver: tuple[OtlpReceiver, str]
) -> None:
    fake, url = receiver
    settings = Settings.from_sources(home=tmp_path, environ={})
    tracer = open_tracer(settings, environ={"OTEL_EXPORTER_OTLP_ENDPOINT": url})
    assert [type(s).__name__ for s in tracer.sinks] == ["TraceStore", "OtelSink"]
    with tracer.span("helpdesk", kind="run", attributes={attr.AGENT_NAME: "helpdesk"}) as run:
        pass
    tracer.close()
    assert [s.name for s in fake.spans] == ["invoke_agent helpdesk"]
    with TraceStore.for_settings(settings) as store:
        assert store.get_run(run.trace_id).run.copilot == "helpdesk"


def test_open_tracer_without_endpoint_only_stores(tmp_path: Path) -> None:
    settings = Settings.from_sources(home=tmp_path, environ={})
    tracer = open_tracer(settings, environ={}, background=True)
    assert [type(s).__name__ for s in tracer.sinks] == ["BackgroundSink"]
    with tracer.span("run", kind="run") as run:
        pass
    tracer.close()
    with TraceStore.for_settings(settings) as store:
        assert store.list_runs()[0].run_id == run.trace_id


def test_open_tracer_warns_when_the_otel_packages_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace.export", None)
    settings = Settings.from_sources(home=tmp_path, environ={})
    with caplog.at_level(logging.WARNING):
        tracer = open_tracer(settings, environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"})
    assert [type(s).__name__ for s in tracer.sinks] == ["TraceStore"]
    assert "pip install 'pilothouse[otel]'" in caplog.text
    tracer.close()


def test_names_fall_back_to_the_span_name_without_a_repeated_operation() -> None:
    run = Span("a" * 32, "1" * 16, None, "invoke_agent helpdesk", "run")
    tool = Span("a" * 32, "2" * 16, "1" * 16, "execute_tool open_ticket", "tool")
    plain_tool = Span("a" * 32, "3" * 16, "1" * 16, "lookup", "tool")
    assert genai_span(run).name == "invoke_agent helpdesk"
    assert genai_span(tool).name == "execute_tool open_ticket"
    assert genai_span(tool).attributes["gen_ai.tool.name"] == "open_ticket"
    assert genai_span(plain_tool).name == "execute_tool lookup"
