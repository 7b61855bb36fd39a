"""Approvals belong to whoever may decide them: a run records the key that started it;
deciding needs `approve:<copilot>` (or the run's own key when the copilot allows
self-approval) and the whole run id; a key without the right gets the 404 of an
unknown id and learns no run id or call id; a key sees only its own conversations.
Over a real server on 127.0.0.1, with the chat API and the management API."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pilothouse.config import Settings
from pilothouse.models import FunctionModel, tool_call
from pilothouse.server.app import create_app
from pilothouse.server.keys import KeyStore
from pilothouse.types import Message, ModelRequest, TextPart
from tests.server.conftest import running

NAME = "testdesk"
QUESTION = [{"role": "user", "content": "Delete the old tickets"}]


def ticket_model(request: ModelRequest) -> Message:
    last = request.messages[-1]
    if last.role == "tool":
        return Message("assistant", (TextPart(f"Done: {last.tool_results[0].content}"),))
    return tool_call("create_ticket", {"summary": "delete everything"}, id="call_t1")


@dataclass
class Keys:
    alice: str
    alice_id: str
    bob: str
    approver: str
    admin: str


@dataclass
class Served:
    base: str
    keys: Keys
    folder: Path

    def chat(self, key: str, **ext: Any) -> httpx.Response:
        body: dict[str, Any] = {"model": NAME, "messages": QUESTION}
        if ext:
            body["pilothouse"] = ext
        return httpx.post(
            f"{self.base}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )

    def api(self, method: str, path: str, key: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.base}/api{path}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
            **kwargs,
        )

    def created(self) -> list[str]:
        module = next(
            (
                m
                for m in list(sys.modules.values())
                if getattr(m, "__file__", None) == str(self.folder / "tools.py")
            ),
            None,
        )
        return list(module.CREATED) if module is not None else []


@pytest.fixture
def serve(copilot_dir: Path, settings: Settings) -> Iterator[Any]:
    stack: list[Any] = []

    def start(*, self_approve: bool = False) -> Served:
        if self_approve:
            definition = (copilot_dir / "copilot.yaml").read_text()
            (copilot_dir / "copilot.yaml").write_text(
                definition + "approvals: {self_approve: true}\n"
            )
        store = KeyStore(settings.database_path)
        alice, alice_record = store.create("alice", [f"chat:{NAME}"])
        bob, _ = store.create("bob", ["chat:*"])
        approver, _ = store.create("approver", [f"approve:{NAME}"])
        admin, _ = store.create("admin", ["admin"])
        app = create_app(
            settings,
            copilots=[copilot_dir],
            keys=store,
            copilot_models={NAME: [FunctionModel(ticket_model, model_id="local:qwen")]},
        )
        ctx = running(app)
        base, _ = ctx.__enter__()
        stack.append((ctx, store))
        return Served(base, Keys(alice, alice_record.id, bob, approver, admin), copilot_dir)

    yield start
    for ctx, store in stack:
        ctx.__exit__(None, None, None)
        store.close()


def paused_run(served: Served) -> str:
    reply = served.chat(served.keys.alice)
    assert reply.status_code == 200, reply.text
    ext = reply.json()["pilothouse"]
    assert ext["status"] == "awaiting_approval"
    run_id: str = ext["run_id"]
    return run_id


def test_another_key_cannot_decide_a_run_by_prefix_or_by_its_whole_id(serve: Any) -> None:
    served = serve()
    run_id = paused_run(served)
    keys = served.keys
    for key in (keys.bob, keys.alice):  # chat keys: no approve scope, no self-approval
        for given in (run_id[:1], run_id[:8], run_id):
            reply = served.chat(key, run_id=given, approve=["call_t1"])
            assert reply.status_code == 404, reply.text
            assert reply.json()["error"]["code"] == "run_not_found"
            assert run_id not in reply.text.replace(given, "") and "call_t1" not in reply.text
            decided = served.api("POST", f"/approvals/{given}", key, json={"approve": ["call_t1"]})
            assert decided.status_code == 404
            assert decided.json()["error"]["code"] == "paused_run_not_found"
            assert run_id not in decided.text.replace(given, "")
            assert "call_t1" not in decided.text
        listing = served.api("GET", "/approvals", key)
        assert listing.status_code == 200 and listing.json() == {"runs": []}
    # a wrong call id by someone who may not decide: still the 404, no pending ids
    wrong = served.chat(keys.bob, run_id=run_id, approve=["call_zz"])
    assert wrong.status_code == 404 and "call_t1" not in wrong.text
    assert served.created() == []  # the tool never ran

    # the approver: not by prefix, by the whole id
    by_prefix = served.chat(keys.approver, run_id=run_id[:8], approve=["call_t1"])
    assert by_prefix.status_code == 403  # an approve-only key cannot chat at all
    by_prefix = served.api(
        "POST", f"/approvals/{run_id[:8]}", keys.approver, json={"approve": ["call_t1"]}
    )
    assert by_prefix.status_code == 404
    [pending] = served.api("GET", "/approvals", keys.approver).json()["runs"]
    assert pending["run_id"] == run_id and pending["key_id"] == keys.alice_id
    decided = served.api(
        "POST", f"/approvals/{run_id}", keys.approver, json={"approve": ["call_t1"]}
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["text"] == "Done: HD-1001 created"
    assert served.created() == ["delete everything"]


def test_approve_scope_over_the_chat_api(serve: Any, settings: Settings) -> None:
    served = serve()
    store = KeyStore(settings.database_path)
    both, _ = store.create("desk", [f"chat:{NAME}", f"approve:{NAME}"])
    store.close()
    run_id = paused_run(served)
    wrong = served.chat(both, run_id=run_id, approve=["call_zz"])
    assert wrong.status_code == 400  # allowed to decide: told which calls are pending
    assert "call_t1" in wrong.text
    reply = served.chat(both, run_id=run_id, approve=["call_t1"])
    assert reply.status_code == 200, reply.text
    assert reply.json()["pilothouse"]["status"] == "completed"
    assert served.created() == ["delete everything"]


def test_a_copilot_may_let_the_key_that_started_a_run_decide_it(serve: Any) -> None:
    served = serve(self_approve=True)
    keys = served.keys
    run_id = paused_run(served)
    assert served.chat(keys.bob, run_id=run_id, approve=["call_t1"]).status_code == 404
    assert served.api("GET", "/approvals", keys.bob).json() == {"runs": []}
    [mine] = served.api("GET", "/approvals", keys.alice).json()["runs"]
    assert mine["run_id"] == run_id
    reply = served.chat(keys.alice, run_id=run_id, approve=["call_t1"])
    assert reply.status_code == 200, reply.text
    assert reply.json()["pilothouse"]["status"] == "completed"
    assert served.created() == ["delete everything"]
    # the runs record who started them; the approval span who decided
    runs = served.api("GET", "/runs", keys.admin).json()["runs"]
    assert [r["key_id"] for r in runs] == [keys.alice_id, keys.alice_id]
    resumed = served.api("GET", f"/runs/{runs[0]['run_id']}", keys.admin).json()
    approvals = [s for s in resumed["spans"][0]["children"] if s["kind"] == "approval"]
    assert approvals[0]["attributes"]["pilothouse.approval.key_id"] == keys.alice_id


def test_a_key_sees_and_continues_only_its_own_conversations(serve: Any) -> None:
    served = serve()
    keys = served.keys
    first = served.chat(keys.alice)
    conversation = first.json()["pilothouse"]["conversation_id"]
    theirs = served.chat(keys.bob, conversation_id=conversation)
    assert theirs.status_code == 404
    assert theirs.json()["error"]["code"] == "conversation_not_found"
    assert served.chat(keys.alice, conversation_id=conversation).status_code == 200

    mine = served.api("GET", "/conversations", keys.alice).json()["conversations"]
    assert [c["id"] for c in mine] == [conversation]
    assert mine[0]["key_id"] == keys.alice_id
    assert served.api("GET", "/conversations", keys.bob).json() == {"conversations": []}
    for method in ("GET", "DELETE"):
        refused = served.api(method, f"/conversations/{conversation}", keys.bob)
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "conversation_not_found"
    assert served.api("GET", f"/conversations/{conversation}", keys.alice).status_code == 200
    everyone = served.api("GET", "/conversations", keys.admin).json()["conversations"]
    assert [c["id"] for c in everyone] == [conversation]
    assert served.api("DELETE", f"/conversations/{conversation}", keys.alice).status_code == 204
