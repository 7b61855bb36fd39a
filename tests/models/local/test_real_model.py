"""The real embedded model (Qwen2.5-Coder-0.5B on CPU): few, short requests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import jsonschema
import pytest

from pilothouse.models.local import LocalModel
from pilothouse.types import (
    Message,
    ModelRequest,
    OutputSchema,
    StreamEnd,
    TextDelta,
    ToolResultPart,
    ToolSpec,
)
from tests.real_model import real_weights

pytestmark = pytest.mark.real_model

SYSTEM = Message.system("You are a helpful assistant. Answer in one short sentence.")
WEATHER = ToolSpec(
    "get_weather",
    "Get the current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def ask(text: str, **kwargs: object) -> ModelRequest:
    options: dict[str, object] = {"temperature": 0.0, "max_output_tokens": 24, **kwargs}
    return ModelRequest((SYSTEM, Message.user(text)), **options)  # type: ignore[arg-type]


async def test_it_answers(real_model: LocalModel) -> None:
    response = await real_model.complete(ask("What is the capital of France?"))
    assert "Paris" in response.text
    assert response.finish_reason in ("stop", "length")
    assert response.usage.input_tokens > 10 and response.usage.output_tokens > 0


async def test_it_streams_token_by_token(real_model: LocalModel) -> None:
    deltas: list[str] = []
    end = None
    async for event in real_model.stream(ask("Name three colours.")):
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        elif isinstance(event, StreamEnd):
            end = event
    assert len(deltas) >= 3
    assert end is not None and end.response.text == "".join(deltas)


async def test_an_emulated_tool_call_and_its_result(real_model: LocalModel) -> None:
    request = ask("What's the weather in Paris right now?", tools=(WEATHER,), max_output_tokens=40)
    first = await real_model.complete(request)
    assert first.finish_reason == "tool_calls", first.text
    call = first.tool_calls[0]
    assert call.name == "get_weather" and "paris" in str(call.arguments.get("city", "")).lower()

    result = ToolResultPart(call.id, call.name, '{"temperature_c": 18, "sky": "cloudy"}')
    follow_up = ModelRequest(
        (*request.messages, first.message, Message.tool(result)),
        tools=(WEATHER,),
        temperature=0.0,
        max_output_tokens=40,
    )
    second = await real_model.complete(follow_up)
    assert not second.tool_calls and second.finish_reason in ("stop", "length")
    assert "18" in second.text


TICKET_STATUS = ToolSpec(
    "ticket_status",
    "Look up a helpdesk ticket by its number.",
    {
        "type": "object",
        "properties": {"ticket_id": {"type": "string", "description": "e.g. HD-1234"}},
        "required": ["ticket_id"],
    },
)


async def test_a_question_the_context_answers_gets_an_answer_not_a_tool_call(
    real_model: LocalModel,
) -> None:
    # Small models lean towards calling whatever tool is offered; together with the
    # weather test above this holds both sides of the 0.5B's profile (calls first).
    handbook = Message.system(
        "You are an IT helpdesk assistant. Answer from this handbook passage:\n"
        "[1] The screen locks automatically after 5 minutes of inactivity."
    )
    request = ModelRequest(
        (handbook, Message.user("After how long does my screen lock?")),
        tools=(TICKET_STATUS,),
        temperature=0.0,
        max_output_tokens=40,
    )
    response = await real_model.complete(request)
    assert not response.tool_calls, response.tool_calls
    assert "5" in response.text


async def test_structured_output_follows_its_schema(real_model: LocalModel) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
        "additionalProperties": False,
    }
    response = await real_model.complete(
        ask(
            "Name the capital of Italy and its country.",
            output_schema=OutputSchema(schema),
            max_output_tokens=40,
        )
    )
    jsonschema.validate(response.json(), schema)


async def test_two_requests_at_once_both_finish(real_model: LocalModel) -> None:
    one, two = await asyncio.gather(
        real_model.complete(ask("Say hello.", max_output_tokens=8)),
        real_model.complete(ask("Say goodbye.", max_output_tokens=8)),
    )
    assert one.text.strip() and two.text.strip()


async def test_the_event_loop_keeps_ticking_during_inference(real_model: LocalModel) -> None:
    ticks = 0
    running = True

    async def ticker() -> None:
        nonlocal ticks
        while running:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    await real_model.complete(ask("Count from one to five.", max_output_tokens=16))
    elapsed = time.monotonic() - started
    running = False
    await task
    # A blocked loop would tick once or twice; a free one about every 10 ms (allow a
    # crowded CI machine to run it at a fifth of that rate).
    assert elapsed > 0.1 and ticks >= max(5, elapsed / 0.01 / 5)


async def test_the_unchanged_prompt_prefix_is_reused(real_model: LocalModel) -> None:
    system = Message.system(
        "You are the support assistant of Pilothouse, a platform for an organisation's "
        "own AI copilots. Be precise and brief. Never invent facts; say when you do not "
        "know. Answer in plain English without lists or headings."
    )

    def turn(question: str) -> ModelRequest:
        return ModelRequest((system, Message.user(question)), temperature=0.0, max_output_tokens=8)

    await real_model.complete(turn("What is a copilot?"))
    second = await real_model.complete(turn("What is a model?"))
    assert second.usage.cached_tokens > 0
    assert second.usage.cached_tokens < second.usage.input_tokens


def test_loading_makes_openmp_wait_passively() -> None:
    """In a fresh process (OpenMP reads the policy once, when xllamacpp loads it)."""
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from pilothouse.config import LocalSettings\n"
        "from pilothouse.models.local.runtime import RuntimeRegistry\n"
        # kept until os._exit (a server destroyed just after loading hung in its
        # destructor before runtime.wait_for_serving_loop; the test below covers that)
        "settings = LocalSettings(context_size=256, parallel=1)\n"
        "runtime = RuntimeRegistry().get(Path(sys.argv[1]), settings)\n"
        "print(os.environ.get('OMP_WAIT_POLICY'), flush=True)\n"
        # the embedded server's threads would keep the process alive after the answer
        "os._exit(0)\n"
    )
    environ = {
        k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
    }
    done = subprocess.run(
        [sys.executable, "-c", code, str(real_weights())],
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert done.stdout.split()[0] == "PASSIVE", done.stdout + done.stderr


def anonymous_memory_after_load(repack: bool) -> int:
    """kB of anonymous memory (RssAnon) of a fresh process that loaded the real weights
    with `[local] repack` set to `repack`."""
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from pilothouse.config import LocalSettings\n"
        "from pilothouse.models.local.runtime import RuntimeRegistry\n"
        "settings = LocalSettings(context_size=256, parallel=1, repack=sys.argv[2] == '1')\n"
        "runtime = RuntimeRegistry().get(Path(sys.argv[1]), settings)\n"
        # the binding loads in the background: the first request waits for it
        "hi = {'messages': [{'role': 'user', 'content': 'Hi'}], 'max_tokens': 1}\n"
        "runtime.server.handle_chat_completions(hi, lambda chunk: False)\n"
        "print(Path('/proc/self/status').read_text(), flush=True)\n"
        "os._exit(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(real_weights()), "1" if repack else "0"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    [line] = [x for x in done.stdout.splitlines() if x.startswith("RssAnon:")]
    return int(line.split()[1])


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc (Linux)")
def test_the_weights_are_used_as_stored_unless_repacking_is_asked_for() -> None:
    # Repacked weights are copies in anonymous memory; weights used as stored stay in
    # the mapped file. The 0.5B's Q4_K and Q6_K matrices are ones llama.cpp repacks.
    stored, repacked = anonymous_memory_after_load(False), anonymous_memory_after_load(True)
    assert repacked - stored > 10_000, (stored, repacked)  # kB; 28,700 measured


def test_a_runtime_unloaded_right_after_loading_lets_go() -> None:
    """In a fresh process, each load unloaded at once: xllamacpp's server dropped before
    its serving loop had started waited forever in its destructor (1 of 5 fresh
    processes at load 6-8; runtime.wait_for_serving_loop). The timeout fails the test
    instead of hanging it."""
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from pilothouse.config import LocalSettings\n"
        "from pilothouse.models.local.runtime import RuntimeRegistry\n"
        "registry = RuntimeRegistry()\n"
        "path = Path(sys.argv[1])\n"
        "for _ in range(5):\n"
        "    registry.get(path, LocalSettings(context_size=256, parallel=1, threads=1))\n"
        "    assert registry.unload(path)\n"
        "    print('unloaded', flush=True)\n"
        # the embedded server's threads would keep the process alive after the answer
        "os._exit(0)\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(real_weights())],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"unloading hung after {str(hung.stdout or '').count('unloaded')} of 5")
    assert done.stdout.split() == ["unloaded"] * 5, done.stdout + done.stderr
