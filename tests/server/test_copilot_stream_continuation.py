"""A copilot served on `/v1/chat/completions` with `model.continue_streams`: when its
stream breaks after text was sent and a fallback carries it on, the client's stream
says so with a `continued` progress chunk (as the gateway marks it): what comes before
it is the broken model's text, what follows the continuation (led by the words the
answer filter still held)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai

from pilothouse.errors import UnavailableError
from pilothouse.models import ScriptedModel
from pilothouse.models.testing import BreakAfter
from tests.server.conftest import COPILOT_NAME as NAME


def test_a_copilot_stream_marks_where_another_model_carries_on(
    serve: Any, copilot_dir: Path
) -> None:
    yaml_path = copilot_dir / "copilot.yaml"
    yaml_path.write_text(
        yaml_path.read_text().replace(
            "  primary: local:qwen2.5-coder-0.5b\n",
            "  primary: local:qwen2.5-coder-0.5b\n  continue_streams: true\n",
        )
    )
    sent = "Our VPN client is WireGuard, from the staff portal. It conn"
    broken = ScriptedModel([BreakAfter(sent, UnavailableError("connection reset"))], model_id="p:a")
    can = ScriptedModel(["ects at login [1]."], model_id="p:c", continues=True)
    base, key = serve(broken, can)
    with openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0) as client:
        chunks = list(
            client.chat.completions.create(
                model=NAME,
                messages=[{"role": "user", "content": "Which VPN client do we use?"}],
                stream=True,
            )
        )
    seen: list[str] = []  # text, and the marker where it goes
    marks: list[dict[str, Any]] = []
    for chunk in chunks:
        extension = (chunk.model_extra or {}).get("pilothouse") or {}
        if extension.get("event") == "continued":
            marks.append(extension)
            seen.append("|")
        elif chunk.choices and chunk.choices[0].delta.content:
            seen.append(chunk.choices[0].delta.content)
    [mark] = marks
    assert mark["continued_on"] == "p:c" and "connection reset" in mark["after_error"]
    before, after = "".join(seen).split("|")
    assert before.startswith("Our VPN client is WireGuard") and sent.startswith(before)
    assert before + after == sent + "ects at login [1]."
    assert chunks[-1].choices[0].finish_reason == "stop"
