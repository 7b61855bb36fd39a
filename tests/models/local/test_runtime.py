"""The runtime's threading, cancellation and error mapping, and the adapter's request
mapping, with a stand-in for the xllamacpp server (blocking calls and callbacks from
another thread, like the binding)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pilothouse.config import LocalSettings, Settings
from pilothouse.errors import (
    BadRequestError,
    ContextTooLongError,
    ModelNotAvailableError,
    UnavailableError,
)
from pilothouse.models.local import LocalModel, RuntimeRegistry
from pilothouse.models.local.runtime import ChunkCallback, openmp_environment
from pilothouse.models.providers import resolve_endpoint
from pilothouse.types import (
    ImagePart,
    Message,
    ModelRequest,
    OutputSchema,
    StreamEnd,
    TextDelta,
    ToolSpec,
)


def chunk(text: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {"content": text} if text is not None else {}
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def usage_chunk(prompt: int, completion: int, cached: int) -> dict[str, Any]:
    return {
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
        "timings": {"cache_n": cached, "prompt_n": prompt - cached, "predicted_n": completion},
    }


class FakeServer:
    """Streams `script` (a list of chunks, or an exception to raise) per call, sleeping
    `delay_s` between chunks while holding the calling thread, as the binding does."""

    def __init__(self, script: list[Any] | None = None, delay_s: float = 0.0):
        self.script = script if script is not None else [chunk("Hi"), chunk(" there", "stop")]
        self.delay_s = delay_s
        self.payloads: list[dict[str, Any]] = []
        self.sent: list[int] = []
        self.stopped_early: list[bool] = []
        self.threads: set[str] = set()
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def handle_chat_completions(self, prompt: dict[str, Any], callback: ChunkCallback) -> None:
        self.payloads.append(prompt)
        self.threads.add(threading.current_thread().name)
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        sent = 0
        try:
            for item in self.script:
                if isinstance(item, BaseException):
                    raise item
                time.sleep(self.delay_s)
                sent += 1
                if callback(item):
                    self.stopped_early.append(True)
                    return
            self.stopped_early.append(False)
        finally:
            self.sent.append(sent)
            with self._lock:
                self.active -= 1


def registry_for(server: FakeServer, loads: list[Path] | None = None) -> RuntimeRegistry:
    def factory(path: Path, settings: LocalSettings) -> FakeServer:
        if loads is not None:
            loads.append(path)
        time.sleep(0.05)
        return server

    return RuntimeRegistry(factory)  # type: ignore[arg-type]


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00")
    return path


def local_model(gguf: Path, server: FakeServer, **local: Any) -> LocalModel:
    settings = Settings.from_sources(home=gguf.parent, environ={}, file_data={"local": local})
    return LocalModel(
        f"local:{gguf}",
        str(gguf),
        resolve_endpoint("local", settings),
        settings,
        runtimes=registry_for(server),
    )


# --- the adapter's mapping -----------------------------------------------------------


async def test_the_request_is_mapped_to_a_chat_completion(gguf: Path) -> None:
    server = FakeServer([chunk("Par"), chunk("is", "stop"), usage_chunk(30, 2, 25)])
    model = local_model(gguf, server)
    request = ModelRequest(
        (
            Message.system("Be brief."),
            Message.user("Capital of France?"),
            Message.assistant("Paris."),
            Message.user("And Italy?"),
        ),
        temperature=0.2,
        max_output_tokens=12,
        stop=("\n\n",),
        seed=7,
    )
    response = await model.complete(request)
    assert response.text == "Paris" and response.finish_reason == "stop"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (30, 2)
    assert response.usage.cached_tokens == 25
    assert response.cost_usd == 0.0
    body = server.payloads[0]
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And Italy?"},
    ]
    assert body["temperature"] == 0.2 and body["max_tokens"] == 12
    assert body["stop"] == ["\n\n"] and body["seed"] == 7
    assert body["stream"] is True and body["cache_prompt"] is True
    assert "response_format" not in body and "tools" not in body


async def test_structured_output_becomes_a_json_schema_response_format(gguf: Path) -> None:
    server = FakeServer([chunk('{"n": 1}', "stop")])
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    response = await local_model(gguf, server).complete(
        ModelRequest((Message.user("n?"),), output_schema=OutputSchema(schema, name="count"))
    )
    assert response.json() == {"n": 1}
    assert server.payloads[0]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "count", "schema": schema, "strict": True},
    }


async def test_a_grammar_is_sent_and_a_final_assistant_message_is_continued(
    gguf: Path,
) -> None:
    server = FakeServer([chunk("1, 2", "stop")])
    model = local_model(gguf, server)
    request = ModelRequest(
        (Message.user("Which?"), Message.assistant('{"sources": [')),
        grammar='root ::= "1" (", " "2")?',
        stop=("]",),
    )
    response = await model.complete(request)
    assert response.text == "1, 2"  # the continuation: the opening is the caller's
    body = server.payloads[0]
    assert body["grammar"] == 'root ::= "1" (", " "2")?' and "response_format" not in body
    assert body["messages"][-1] == {"role": "assistant", "content": '{"sources": ['}
    assert model.continues_assistant()
    both = ModelRequest(
        (Message.user("n?"),), grammar='root ::= "1"', output_schema=OutputSchema({})
    )
    with pytest.raises(BadRequestError, match="grammar or an output schema"):
        await model.complete(both)


async def test_tools_are_emulated_with_a_constrained_envelope(gguf: Path) -> None:
    server = FakeServer(
        [
            chunk('{"tool_calls": [{"name": "get_weather", '),
            chunk('"arguments": {"city": "Paris"}}]}', "stop"),
        ]
    )
    tool = ToolSpec(
        "get_weather", "Weather.", {"type": "object", "properties": {"city": {"type": "string"}}}
    )
    response = await local_model(gguf, server).complete(
        ModelRequest((Message.user("Weather in Paris?"),), tools=(tool,))
    )
    assert response.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    body = server.payloads[0]
    assert "tools" not in body
    assert body["response_format"]["json_schema"]["name"] == "tool_envelope"
    assert "get_weather" in body["messages"][0]["content"]


async def test_a_length_finish_is_reported(gguf: Path) -> None:
    server = FakeServer([chunk("one two"), chunk(" three", "length")])
    response = await local_model(gguf, server).complete(ModelRequest((Message.user("Count"),)))
    assert response.finish_reason == "length" and response.text == "one two three"


async def test_images_are_refused_before_any_work(gguf: Path) -> None:
    server = FakeServer()
    request = ModelRequest((Message.user("What is this?", ImagePart(url="http://x/y.png")),))
    with pytest.raises(BadRequestError, match="images"):
        await local_model(gguf, server).complete(request)
    assert server.payloads == []


async def test_a_stream_without_a_finish_is_not_a_silent_truncation(gguf: Path) -> None:
    server = FakeServer([chunk("half an ans")])
    events = [e async for e in local_model(gguf, server).stream(ModelRequest((Message.user("x"),)))]
    assert type(events[-1]).__name__ == "StreamError"


# --- errors ------------------------------------------------------------------------


async def test_context_overflow_is_a_typed_error(gguf: Path) -> None:
    error = {
        "error": {
            "code": 400,
            "message": "request (3030 tokens) exceeds the available context size (1024 tokens)",
            "type": "exceed_context_size_error",
        }
    }
    with pytest.raises(ContextTooLongError, match="context_size"):
        await local_model(gguf, FakeServer([error])).complete(ModelRequest((Message.user("x"),)))


async def test_binding_exceptions_become_typed_errors(gguf: Path) -> None:
    bad = FakeServer([ValueError("JSON schema error at #/properties/a")])
    with pytest.raises(BadRequestError, match="JSON schema error"):
        await local_model(gguf, bad).complete(ModelRequest((Message.user("x"),)))
    broken = FakeServer([RuntimeError("decode failed")])
    with pytest.raises(UnavailableError, match="decode failed"):
        await local_model(gguf, broken).complete(ModelRequest((Message.user("x"),)))


# --- threads, the event loop, cancellation ---------------------------------------------


async def test_the_event_loop_keeps_running_while_the_model_works(gguf: Path) -> None:
    server = FakeServer([chunk("a"), chunk("b"), chunk("c", "stop")], delay_s=0.1)
    model = local_model(gguf, server)
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    await model.complete(ModelRequest((Message.user("x"),)))
    done.set()
    await task
    assert ticks >= 10  # 0.3 s of blocking work; a blocked loop would tick once or twice
    assert all(name.startswith("pilothouse-llama") for name in server.threads)


async def test_closing_a_stream_stops_the_generation(gguf: Path) -> None:
    script = [chunk(f"w{i} ") for i in range(50)] + [chunk("", "stop")]
    server = FakeServer(script, delay_s=0.01)
    model = local_model(gguf, server)
    stream = model.stream(ModelRequest((Message.user("Talk."),)))
    received = 0
    async for event in stream:
        if isinstance(event, TextDelta):
            received += 1
            if received == 3:
                break
    await stream.aclose()  # type: ignore[attr-defined]
    for _ in range(100):
        if server.sent:
            break
        await asyncio.sleep(0.01)
    assert server.stopped_early == [True]
    assert server.sent[0] < 10  # stopped within a token or two, not after 51 chunks


async def test_concurrent_requests_all_finish(gguf: Path) -> None:
    server = FakeServer([chunk("x"), chunk("y", "stop")], delay_s=0.05)
    model = local_model(gguf, server, parallel=2)
    requests = [ModelRequest((Message.user(f"q{i}"),)) for i in range(5)]
    responses = await asyncio.gather(*(model.complete(r) for r in requests))
    assert [r.text for r in responses] == ["xy"] * 5
    assert server.max_active >= 2  # served side by side, more waiting their turn


async def test_each_file_is_loaded_once_however_many_ask(gguf: Path) -> None:
    loads: list[Path] = []
    registry = registry_for(FakeServer(), loads)
    settings = LocalSettings()
    resolved = await asyncio.to_thread(gguf.resolve)
    runtimes = await asyncio.gather(*(registry.aget(gguf, settings) for _ in range(4)))
    assert len(loads) == 1 and all(r is runtimes[0] for r in runtimes)
    assert registry.loaded() == [resolved]
    assert registry.unload(gguf) and registry.loaded() == []


async def test_models_share_the_runtime_of_their_file(gguf: Path) -> None:
    loads: list[Path] = []
    server = FakeServer()
    registry = registry_for(server, loads)
    settings = Settings.from_sources(home=gguf.parent, environ={})
    endpoint = resolve_endpoint("local", settings)
    one = LocalModel(f"local:{gguf}", str(gguf), endpoint, settings, runtimes=registry)
    two = LocalModel(f"local:{gguf}", str(gguf), endpoint, settings, runtimes=registry)
    await asyncio.gather(
        one.complete(ModelRequest((Message.user("a"),))),
        two.complete(ModelRequest((Message.user("b"),))),
    )
    assert len(loads) == 1 and len(server.payloads) == 2


async def test_a_missing_gguf_fails_before_any_content(tmp_path: Path) -> None:
    settings = Settings.from_sources(home=tmp_path, environ={})
    model = LocalModel(
        "local:/nowhere/x.gguf",
        "/nowhere/x.gguf",
        resolve_endpoint("local", settings),
        settings,
        runtimes=registry_for(FakeServer()),
    )
    with pytest.raises(ModelNotAvailableError, match="not found"):
        async for _ in model.stream(ModelRequest((Message.user("x"),))):
            pass


async def test_the_stream_ends_with_the_whole_answer(gguf: Path) -> None:
    server = FakeServer([chunk("Hel"), chunk("lo", "stop"), usage_chunk(5, 2, 0)])
    events = [e async for e in local_model(gguf, server).stream(ModelRequest((Message.user("x"),)))]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo"]
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.response.text == "Hello"
    assert end.response.usage.input_tokens == 5


def test_the_registry_builds_a_local_model_with_the_local_profile(tmp_path: Path) -> None:
    from pilothouse.models.registry import create_model

    settings = Settings.from_sources(home=tmp_path, environ={})
    model = create_model("local:qwen2.5-coder-0.5b", settings)
    assert isinstance(model, LocalModel)
    assert model.name == "qwen2.5-coder-0.5b"
    assert not model.profile.native_tools and model.profile.json_schema


def test_openmp_threads_sleep_while_they_wait_unless_the_environment_says_otherwise() -> None:
    environ: dict[str, str] = {"PATH": "/bin"}
    assert openmp_environment(environ)
    assert environ == {"PATH": "/bin", "OMP_WAIT_POLICY": "PASSIVE"}
    for chosen in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "300000"}):
        environ = dict(chosen)
        assert not openmp_environment(environ)
        assert environ == chosen
