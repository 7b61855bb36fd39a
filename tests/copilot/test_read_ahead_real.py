"""On the real embedded model (0.5B): the prefix read ahead when the copilot opens is
found in the prompt cache by the first question's first request."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.copilot.templates import copy_template
from pilothouse.storage.traces import TraceStore
from pilothouse.tracing import attributes as A
from tests.real_model import real_weights

pytestmark = pytest.mark.real_model


async def test_the_first_question_finds_the_prefix_read_ahead(tmp_path: Path) -> None:
    gguf = real_weights()
    folder = tmp_path / "demo"
    copy_template(folder, name="demo")
    instructions = folder / "prompts/instructions.prompty"
    # A prefix no earlier request of this process has read (its runtime is shared).
    nonce = f"Your reference is {secrets.token_hex(8)}."
    instructions.write_text(instructions.read_text().replace("system:\n", f"system:\n{nonce}\n", 1))
    settings = Settings.from_sources(home=tmp_path / "home", environ={})
    copilot = await Copilot.open(folder, settings=settings, model=f"local:{gguf}")
    try:
        ahead = await copilot.read_ahead()
        answer = await copilot.ask("How long do the backup batteries last?")
    finally:
        await copilot.aclose()
    # Nothing of it was read before but the chat template's opening tokens, which every
    # prompt of the shared runtime starts with (an earlier test's request left them).
    assert ahead is not None and ahead.input_tokens > 100 and ahead.cached_tokens < 8
    store = TraceStore(settings.database_path)
    spans = store.get_run(answer.run_id).spans
    store.close()
    first = next(s for s in spans if s.kind == "model")  # spans come in start order
    # All of it but the empty user turn's closing tokens.
    assert first.attributes[A.USAGE_CACHED_TOKENS] >= ahead.input_tokens - 8
