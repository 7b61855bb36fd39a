"""Conversations, runs with their span trees, and pending approvals (approve or deny a
tool call, which resumes the run) over the management API."""

from __future__ import annotations

from pathlib import Path

from pilothouse.config import Settings
from pilothouse.models import FunctionModel, ScriptedModel, tool_call
from pilothouse.types import ModelRequest

from .conftest import ServeFactory, open_copilot


def ticket_model() -> ScriptedModel:
    return ScriptedModel(
        [
            tool_call("create_ticket", {"summary": "screen broken"}, id="t1"),
            "Ticket HD-1001 is open.",
        ],
        model_id="local:qwen",
    )


async def test_conversations_list_get_delete(
    serve: ServeFactory, copilot_dir: Path, settings: Settings
) -> None:
    model = FunctionModel(lambda r: "Use WireGuard [1].", model_id="local:qwen")
    copilot = await open_copilot(copilot_dir, settings, model)
    first = await copilot.ask("Which VPN client do we use?")
    await copilot.ask("And the port?", conversation_id=first.conversation_id)
    other = await copilot.ask("Where are the printers?")
    server = await serve(copilots=[copilot])

    listing = (await server.client.get("/api/conversations")).json()["conversations"]
    assert {c["id"] for c in listing} == {first.conversation_id, other.conversation_id}
    assert listing[0]["id"] == other.conversation_id  # most recently updated first
    mine = await server.client.get("/api/conversations", params={"copilot": "testdesk"})
    assert len(mine.json()["conversations"]) == 2
    nobody = await server.client.get("/api/conversations", params={"copilot": "nobody"})
    assert nobody.json()["conversations"] == []
    limited = await server.client.get("/api/conversations", params={"limit": 1})
    assert len(limited.json()["conversations"]) == 1

    detail = (await server.client.get(f"/api/conversations/{first.conversation_id}")).json()
    assert detail["title"] == "Which VPN client do we use?"
    assert detail["message_count"] == 4
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant", "user", "assistant"]
    assert detail["messages"][1]["text"] == "Use WireGuard [1]."
    assert detail["messages"][1]["run_id"] == first.run_id
    assert detail["messages"][0]["parts"] == [
        {"kind": "text", "text": "Which VPN client do we use?"}
    ]

    gone = await server.client.delete(f"/api/conversations/{first.conversation_id}")
    assert gone.status_code == 204
    missing = await server.client.get(f"/api/conversations/{first.conversation_id}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "conversation_not_found"
    again = await server.client.delete(f"/api/conversations/{first.conversation_id}")
    assert again.status_code == 404


async def test_runs_list_and_span_tree(
    serve: ServeFactory, copilot_dir: Path, settings: Settings
) -> None:
    def answer(request: ModelRequest) -> str:
        return "Use WireGuard [1]."

    copilot = await open_copilot(
        copilot_dir, settings, FunctionModel(answer, model_id="local:qwen")
    )
    result = await copilot.ask("Which VPN client do we use?")
    server = await serve(copilots=[copilot])

    runs = (await server.client.get("/api/runs")).json()["runs"]
    [run] = [r for r in runs if r["run_id"] == result.run_id]
    assert run["copilot"] == "testdesk"
    assert run["question"] == "Which VPN client do we use?"
    assert run["status"] == "completed"
    assert run["conversation_id"] == result.conversation_id
    by_copilot = await server.client.get("/api/runs", params={"copilot": "other"})
    assert by_copilot.json()["runs"] == []

    detail = (await server.client.get(f"/api/runs/{result.run_id}")).json()
    [root] = detail["spans"]
    assert root["kind"] == "run" and root["parent_id"] is None
    kinds = set()

    def walk(span: dict) -> None:  # type: ignore[type-arg]
        kinds.add(span["kind"])
        for child in span["children"]:
            assert child["parent_id"] == span["span_id"]
            walk(child)

    walk(root)
    assert {"retrieval", "model"} <= kinds
    assert detail["span_count"] >= 3
    prefix = await server.client.get(f"/api/runs/{result.run_id[:10]}")
    assert prefix.json()["run_id"] == result.run_id

    for unknown in ("0" * 32, "not-hex"):
        response = await server.client.get(f"/api/runs/{unknown}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "run_not_found"


async def test_approve_a_pending_tool_call_resumes_the_run(
    serve: ServeFactory, copilot_dir: Path, settings: Settings
) -> None:
    copilot = await open_copilot(copilot_dir, settings, ticket_model())
    paused = await copilot.ask("My screen is broken, open a ticket")
    assert paused.status == "awaiting_approval"
    server = await serve(copilots=[copilot])

    pending = (await server.client.get("/api/approvals")).json()["runs"]
    assert len(pending) == 1
    run = pending[0]
    assert run["run_id"] == paused.run_id and run["copilot"] == "testdesk"
    assert run["calls"] == [
        {
            "id": "t1",
            "name": "create_ticket",
            "arguments": {"summary": "screen broken"},
            "raw_arguments": None,
        }
    ]
    assert (await server.client.get("/api/approvals", params={"copilot": "x"})).json() == {
        "runs": []
    }
    status = (await server.client.get("/api/copilots/testdesk")).json()["status"]
    assert status["pending_approvals"] == 1

    response = await server.client.post(f"/api/approvals/{paused.run_id}", json={"approve": ["t1"]})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "completed"
    assert answer["text"] == "Ticket HD-1001 is open."
    assert answer["tool_calls"][0]["approved"] is True
    assert answer["tool_calls"][0]["content"] == "HD-1001 created"
    assert (await server.client.get("/api/approvals")).json()["runs"] == []

    again = await server.client.post(f"/api/approvals/{paused.run_id}", json={"approve": ["t1"]})
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "paused_run_not_found"


async def test_deny_with_a_note_reaches_the_model(
    serve: ServeFactory, copilot_dir: Path, settings: Settings
) -> None:
    model = ScriptedModel([tool_call("create_ticket", {"summary": "x"}, id="t1"), "OK, no ticket."])
    copilot = await open_copilot(copilot_dir, settings, model)
    paused = await copilot.ask("open a ticket")
    server = await serve(copilots=[copilot])
    response = await server.client.post(
        f"/api/approvals/{paused.run_id}", json={"deny": ["t1"], "note": "not needed"}
    )
    assert response.status_code == 200
    assert response.json()["text"] == "OK, no ticket."
    assert response.json()["tool_calls"][0]["approved"] is False
    result = model.requests[1].messages[-1].tool_results[0].content
    assert "denied" in result and "not needed" in result


async def test_bad_decisions_are_refused_and_the_run_stays_paused(
    serve: ServeFactory, copilot_dir: Path, settings: Settings
) -> None:
    copilot = await open_copilot(copilot_dir, settings, ticket_model())
    paused = await copilot.ask("My screen is broken, open a ticket")
    server = await serve(copilots=[copilot])
    url = f"/api/approvals/{paused.run_id}"
    cases = [
        ({"approve": ["t9"]}, "unknown_tool_call"),
        ({"approve": ["t1"], "deny": ["t1"]}, "conflicting_decision"),
        ({}, "no_decision"),
        ({"approve": "t1"}, None),
        ({"approve": ["t1"], "surprise": True}, None),
    ]
    for body, code in cases:
        response = await server.client.post(url, json=body)
        assert response.status_code == 422, body
        if code:
            assert response.json()["error"]["code"] == code
    assert len((await server.client.get("/api/approvals")).json()["runs"]) == 1
    unknown = await server.client.post("/api/approvals/nosuchrun", json={"approve": ["t1"]})
    assert unknown.status_code == 404


async def test_a_run_of_a_copilot_not_served_here_is_409(
    serve: ServeFactory, copilot_dir: Path, settings: Settings
) -> None:
    copilot = await open_copilot(copilot_dir, settings, ticket_model())
    paused = await copilot.ask("My screen is broken, open a ticket")
    await copilot.aclose()
    server = await serve()
    assert len((await server.client.get("/api/approvals")).json()["runs"]) == 1
    response = await server.client.post(f"/api/approvals/{paused.run_id}", json={"approve": ["t1"]})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "copilot_not_served"
    assert len((await server.client.get("/api/approvals")).json()["runs"]) == 1
