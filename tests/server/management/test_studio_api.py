"""The management API routes the Studio added: who the caller is, templates, a
copilot's files one by one (read, edit in place with located problems), and a
knowledge base's passages (a document's chunks, one chunk by id)."""

from __future__ import annotations

from pathlib import Path

import httpx

from pilothouse.config import Settings
from pilothouse.models import ScriptedModel
from pilothouse.server.app import create_app

from .conftest import ServeFactory, Server, as_multipart, copilot_files, exists


async def _created(serve: ServeFactory, **options: object) -> Server:
    server = await serve(copilot_models={"testdesk": [ScriptedModel([])]}, **options)
    created = await server.client.post("/api/copilots", files=as_multipart(copilot_files()))
    assert created.status_code == 201, created.text
    return server


async def test_me_says_who_calls_and_what_the_server_allows(serve: ServeFactory) -> None:
    server = await serve(allow_code_upload=False)
    me = (await server.client.get("/api/me")).json()
    assert me["scopes"] == ["admin"] and me["name"] == "admin" and me["key_id"].startswith("key_")
    assert me["auth"] is True and me["uploads"] is True and me["code_upload"] is False
    chat = (await server.chat_client.get("/api/me")).json()
    assert chat["scopes"] == ["chat:*", "models"]
    assert (await server.anonymous.get("/api/me")).status_code == 401


async def test_me_under_no_auth_from_loopback(settings: Settings) -> None:
    app = create_app(settings, no_auth=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8642") as c:
            me = (await c.get("/api/me")).json()
        async with httpx.AsyncClient(transport=transport, base_url="http://evil.example") as c:
            refused = await c.get("/api/me")
    assert me["auth"] is False and me["uploads"] is False and me["key_id"] is None
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "host_not_allowed"


async def test_templates_are_filled_in_and_name_the_code_this_server_refuses(
    serve: ServeFactory,
) -> None:
    strict = await serve(allow_code_upload=False)
    body = (await strict.client.get("/api/templates", params={"name": "faq"})).json()
    (starter,) = body["templates"]
    files = {f["path"]: f["content"] for f in starter["files"]}
    assert 'name: "faq"' in files["copilot.yaml"] and "tools/sample.py" in files
    assert "{{name}}" not in "".join(files.values())
    assert [p["field"] for p in starter["code"]] == ["tools.0"]
    assert "T2" in starter["description"]
    bad = await strict.client.get("/api/templates", params={"name": "Bad Name"})
    assert bad.status_code == 422
    assert (await strict.chat_client.get("/api/templates")).status_code == 403


async def test_templates_upload_as_they_are_where_code_is_allowed(serve: ServeFactory) -> None:
    server = await serve(copilot_models={"faq": [ScriptedModel([])]})
    (starter,) = (await server.client.get("/api/templates", params={"name": "faq"})).json()[
        "templates"
    ]
    assert starter["code"] == []
    upload = [("files", (f["path"], f["content"])) for f in starter["files"]]
    created = await server.client.post("/api/copilots", files=upload)
    assert created.status_code == 201, created.text
    assert created.json()["tools"] == ["order_status", "request_return"]


async def test_a_copilot_file_is_read_as_it_is(serve: ServeFactory) -> None:
    server = await _created(serve)
    text = await server.client.get("/api/copilots/testdesk/files/copilot.yaml")
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert text.text == copilot_files()["copilot.yaml"]
    prompt = await server.client.get("/api/copilots/testdesk/files/prompts/instructions.prompty")
    assert "test helpdesk" in prompt.text
    missing = await server.client.get("/api/copilots/testdesk/files/nothere.md")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "file_not_found"
    climbing = await server.client.get("/api/copilots/testdesk/files/..%2F..%2Fpilothouse.db")
    assert climbing.status_code in (400, 404)
    assert (
        await server.chat_client.get("/api/copilots/testdesk/files/tools.py")
    ).status_code == 403


async def test_an_edit_is_validated_and_a_bad_one_changes_nothing(serve: ServeFactory) -> None:
    server = await _created(serve)
    folder = server.home / "copilots" / "testdesk"
    before = (folder / "copilot.yaml").read_text()
    bad = before.replace("instructions: prompts/instructions.prompty", "instructions: prompts/x")
    bad += "model:\n  primary: gpt4\n"
    refused = await server.client.patch(
        "/api/copilots/testdesk/files", json={"files": {"copilot.yaml": bad}}
    )
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_copilot"
    problem = next(p for p in error["problems"] if p["field"] == "model.primary")
    assert problem["file"] == "copilot.yaml" and problem["line"] and "gpt4" in problem["message"]
    assert (folder / "copilot.yaml").read_text() == before  # nothing changed
    assert not list((server.home / "copilots" / ".staging").iterdir())

    better = before.replace("top_k: 2", "top_k: 3")
    assert better != before
    prompt = "---\nname: testdesk\n---\nsystem:\nYou are the edited helpdesk.\n"
    edited = await server.client.patch(
        "/api/copilots/testdesk/files",
        json={
            "files": {"copilot.yaml": better, "prompts/instructions.prompty": prompt},
            "delete": ["knowledge/vpn.md"],
        },
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["definition"]["knowledge"]["retrieval"]["top_k"] == 3
    assert (folder / "prompts/instructions.prompty").read_text() == prompt
    assert not exists(folder / "knowledge/vpn.md") and exists(folder / "tools.py")
    assert edited.json()["status"]["knowledge"]["documents"] == 0


async def test_a_copilot_served_from_its_own_folder_is_not_edited(
    serve: ServeFactory, copilot_dir: Path
) -> None:
    server = await serve(copilots=[copilot_dir], copilot_models={"testdesk": [ScriptedModel([])]})
    before = (copilot_dir / "copilot.yaml").read_text()
    not_managed = await server.client.patch(
        "/api/copilots/testdesk/files", json={"files": {"copilot.yaml": "name: x\n"}}
    )
    assert not_managed.status_code == 409
    assert not_managed.json()["error"]["code"] == "copilot_not_managed"
    assert (copilot_dir / "copilot.yaml").read_text() == before
    readable = await server.client.get("/api/copilots/testdesk/files/copilot.yaml")
    assert readable.text == before


async def test_edits_bring_no_code_unless_allowed(serve: ServeFactory) -> None:
    server = await serve(allow_code_upload=False)
    files = copilot_files()
    files.pop("tools.py")
    files["copilot.yaml"] = files["copilot.yaml"].split("tools:")[0]
    created = await server.client.post("/api/copilots", files=as_multipart(files))
    assert created.status_code == 201, created.text
    code = files["copilot.yaml"] + "tools:\n  - python: tools.py\n"
    refused = await server.client.patch(
        "/api/copilots/testdesk/files", json={"files": {"copilot.yaml": code, "tools.py": "x=1"}}
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "code_upload_disabled"
    assert not exists(server.home / "copilots" / "testdesk" / "tools.py")
    unsafe = await server.client.patch(
        "/api/copilots/testdesk/files", json={"files": {"../escape.md": "x"}}
    )
    assert unsafe.status_code == 400 and unsafe.json()["error"]["code"] == "unsafe_path"
    gone = await server.client.patch(
        "/api/copilots/testdesk/files", json={"delete": ["copilot.yaml"]}
    )
    assert gone.status_code == 400


async def test_passages_of_a_document_and_one_by_id(serve: ServeFactory) -> None:
    server = await _created(serve)
    base = "/api/copilots/testdesk/knowledge"
    (document,) = (await server.client.get(f"{base}/documents")).json()["documents"]
    listed = (await server.client.get(f"{base}/documents/{document['id']}/chunks")).json()
    assert listed["total"] == document["chunks"] == len(listed["chunks"]) >= 1
    assert "WireGuard" in " ".join(c["text"] for c in listed["chunks"])
    first = listed["chunks"][0]
    one = (await server.client.get(f"{base}/chunks/{first['chunk_id']}")).json()
    assert one == first and one["headings"]
    missing = await server.client.get(f"{base}/chunks/999999")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "chunk_not_found"
    no_doc = await server.client.get(f"{base}/documents/999999/chunks")
    assert no_doc.status_code == 404
    assert (await server.chat_client.get(f"{base}/chunks/{first['chunk_id']}")).status_code == 403
    default = await server.client.get("/api/knowledge/chunks/1")
    assert default.status_code == 404
