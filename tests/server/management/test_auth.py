"""Every management route needs a key: 401 without a key (or with an unknown one); 403
with a key that lacks the admin (or copilots:write) scope, except the routes where any
key sees only its own (conversations, approvals); promotions need promote:<copilot>;
and every route is documented."""

from __future__ import annotations

import re

import pytest

from pilothouse.server.keys import KeyStore

from .conftest import ServeFactory

SAMPLE = {
    "name": "testdesk",
    "copilot": "testdesk",
    "document_id": "1",
    "conversation_id": "c1",
    "run_id": "abc",
    "chunk_id": "1",
    "path": "copilot.yaml",
}
# routes that name their copilot in the body: a well-formed one, so the scope is what refuses
BODIES = {"startPromotion": {"copilot": "testdesk", "to": "openai:gpt-4.1"}}
ANY_KEY = {
    "listConversations",
    "getConversation",
    "deleteConversation",
    "listPendingApprovals",
    "decidePendingApproval",
    "getCaller",
    "listPromotions",  # the promotions of the copilots the key may promote: none for chat
}


async def management_operations(serve: ServeFactory) -> list[tuple[str, str, dict]]:  # type: ignore[type-arg]
    server = await serve()
    document = server.app.openapi()
    found = []
    for path, operations in document["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            url = re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], path)
            found.append((method.upper(), url, operation))
    return found


async def test_every_route_is_documented(serve: ServeFactory) -> None:
    operations = await management_operations(serve)
    assert len(operations) >= 19
    ids = [op["operationId"] for _, _, op in operations]
    assert len(set(ids)) == len(ids)
    for method, url, op in operations:
        assert op.get("summary"), (method, url)
        for status in ("401", "403", "422"):
            assert status in op["responses"], (method, url, status)
            schema = op["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}


@pytest.mark.parametrize("who", ["anonymous", "unknown", "chat"])
async def test_every_route_refuses_without_the_admin_scope(serve: ServeFactory, who: str) -> None:
    server = await serve()
    operations = await management_operations(serve)
    client = server.chat_client if who == "chat" else server.anonymous
    headers = {"Authorization": "Bearer ph-not-a-real-key"} if who == "unknown" else {}
    for method, url, operation in operations:
        body = BODIES.get(operation["operationId"])
        response = await client.request(method, url, headers=headers, json=body)
        if who == "chat" and operation["operationId"] in ANY_KEY:
            # a key of any scope, which sees nothing of others': empty lists, 404s, 422s
            assert response.status_code in (200, 404, 422), (method, url, response.text)
            continue
        expected = 403 if who == "chat" else 401
        assert response.status_code == expected, (method, url, response.text)
        error = response.json()["error"]
        assert error["code"] in ("missing_api_key", "invalid_api_key", "insufficient_scope")
    assert not (server.home / "copilots").exists()  # nothing was written


async def test_admin_key_in_either_header(serve: ServeFactory) -> None:
    server = await serve()
    bearer = server.client.headers["Authorization"].removeprefix("Bearer ")
    response = await server.anonymous.get("/api/copilots", headers={"X-API-Key": bearer})
    assert response.status_code == 200
    assert response.json() == {"copilots": []}


async def test_an_admin_key_over_its_rate_limit_gets_429(
    serve: ServeFactory, keys: tuple[KeyStore, str, str]
) -> None:
    server = await serve()
    limited, _ = keys[0].create("slow-admin", ["admin"], rate_per_min=1)
    headers = {"Authorization": f"Bearer {limited}"}
    assert (await server.anonymous.get("/api/copilots", headers=headers)).status_code == 200
    refused = await server.anonymous.get("/api/copilots", headers=headers)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
