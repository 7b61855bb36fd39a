"""The embedded runtime's adapter (`LocalModel`, tools emulated by constrained
decoding) passes the chat-model conformance suite's contract checks, with a stand-in
for the xllamacpp server that plays the suite's script."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pilothouse.config import Settings
from pilothouse.models.base import Model
from pilothouse.models.emulation import ENVELOPE_NAME
from pilothouse.models.local import LocalModel
from pilothouse.models.local.runtime import ChunkCallback
from pilothouse.models.providers import resolve_endpoint
from pilothouse.testing.conformance import CHAT_MODELS, Check, ScriptSubject, run_check
from pilothouse.testing.wire import CutStream, Fail, Reply, Step
from tests.models.local.test_runtime import chunk, registry_for, usage_chunk

CAPABILITIES = frozenset({"tools", "parallel_tools", "finish_reasons", "usage"})


class StepServer:
    """Answers each chat completion with the next step, as llama.cpp streams it: the
    tool envelope's JSON where the request asks for it, else plain text."""

    def __init__(self, steps: tuple[Step, ...]) -> None:
        self.steps = list(steps)

    def handle_chat_completions(self, prompt: dict[str, Any], callback: ChunkCallback) -> None:
        step = self.steps.pop(0)
        schema = (prompt.get("response_format") or {}).get("json_schema") or {}
        envelope = schema.get("name") == ENVELOPE_NAME
        if isinstance(step, Fail):
            callback({"error": {"code": step.status, "message": step.message}})
            return
        if isinstance(step, CutStream):
            text = json.dumps({"answer": step.text})[:-2] if envelope else step.text
            for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
                callback(chunk(piece))
            raise RuntimeError("decode failed")
        assert isinstance(step, Reply), step
        if envelope and step.tool_calls:
            calls = [{"name": c.name, "arguments": c.arguments} for c in step.tool_calls]
            text = json.dumps({"tool_calls": calls})
        elif envelope:
            text = json.dumps({"answer": step.text})
        else:
            text = step.text
        size = max(1, -(-len(text) // max(step.chunks, 1)))
        pieces = [text[i : i + size] for i in range(0, len(text), size)] or [""]
        for piece in pieces[:-1]:
            callback(chunk(piece))
        callback(chunk(pieces[-1], "length" if step.finish == "length" else "stop"))
        callback(usage_chunk(step.usage[0], step.usage[1], step.usage[2]))


def local_model(steps: tuple[Step, ...], gguf: Path) -> Model:
    settings = Settings.from_sources(home=gguf.parent, environ={})
    return LocalModel(
        f"local:{gguf}",
        str(gguf),
        resolve_endpoint("local", settings),
        settings,
        runtimes=registry_for(StepServer(steps)),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("check", CHAT_MODELS.checks_for(CAPABILITIES), ids=str)
async def test_local_model(check: Check[ScriptSubject], tmp_path: Path) -> None:
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF\x03\x00\x00\x00")
    subject = ScriptSubject(lambda steps: local_model(steps, gguf), CAPABILITIES, f"local:{gguf}")
    await run_check(check, subject)
