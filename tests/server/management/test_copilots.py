"""Copilots over the management API: list, get, create and update from uploaded
folders (zip or files), delete, the schema; and every way an upload can be bad."""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

from pilothouse.config import Settings
from pilothouse.models import FunctionModel, ScriptedModel
from pilothouse.server.context import Limits
from pilothouse.server.management.uploads import UploadLimits

from .conftest import (
    ServeFactory,
    as_multipart,
    copilot_files,
    exists,
    found,
    open_copilot,
    zip_bytes,
)


def staging_left(home: Path) -> list[Path]:
    staging = home / "copilots" / ".staging"
    return list(staging.iterdir()) if staging.exists() else []


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


async def test_list_and_get_a_served_copilot(
    serve: ServeFactory, copilot_dir: Path, settings: Settings
) -> None:
    copilot = await open_copilot(copilot_dir, settings, ScriptedModel([], model_id="local:qwen"))
    server = await serve(copilots=[copilot])

    listing = await server.client.get("/api/copilots")
    assert listing.status_code == 200
    [summary] = listing.json()["copilots"]
    assert summary["name"] == "testdesk"
    assert summary["managed"] is False
    assert summary["models"] == ["local:qwen"]
    assert set(summary["tools"]) == {"lookup", "create_ticket", "explode"}
    assert summary["knowledge"] is True

    detail = (await server.client.get("/api/copilots/testdesk")).json()
    assert detail["definition"]["instructions"] == "prompts/instructions.prompty"
    assert detail["definition"]["limits"]["max_tool_steps"] == 2
    assert "copilot.yaml" in detail["files"] and "knowledge/vpn.md" in detail["files"]
    assert detail["status"]["knowledge"]["documents"] == 1
    assert detail["status"]["last_ingest"]["added"] == 1
    assert detail["status"]["pending_approvals"] == 0


async def test_unknown_copilot_is_404(serve: ServeFactory) -> None:
    server = await serve()
    response = await server.client.get("/api/copilots/nobody")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "copilot_not_found"
    assert "nobody" in error["message"]
    assert (await server.client.delete("/api/copilots/nobody")).status_code == 404
    upload = as_multipart(copilot_files("nobody"))
    assert (await server.client.put("/api/copilots/nobody", files=upload)).status_code == 404


async def test_schema_is_the_copilot_yaml_schema(serve: ServeFactory) -> None:
    server = await serve()
    schema = (await server.client.get("/api/schemas/copilot")).json()
    assert schema["title"] == "Pilothouse copilot.yaml"
    assert {"name", "instructions"} <= set(schema["required"])
    assert "model" in schema["properties"]


async def test_create_from_files_then_serve_it(serve: ServeFactory) -> None:
    server = await serve()
    response = await server.client.post("/api/copilots", files=as_multipart(copilot_files()))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "testdesk" and body["managed"] is True
    folder = server.home / "copilots" / "testdesk"
    assert body["folder"] == str(folder)
    assert files_under(folder) >= set(copilot_files())
    assert body["status"]["knowledge"]["documents"] == 1
    names = [c["name"] for c in (await server.client.get("/api/copilots")).json()["copilots"]]
    assert names == ["testdesk"]
    assert staging_left(server.home) == []


async def test_create_from_a_zip_with_one_top_folder(serve: ServeFactory) -> None:
    server = await serve()
    archive = zip_bytes(copilot_files("zipdesk"), top="zipdesk/")  # type: ignore[arg-type]
    response = await server.client.post(
        "/api/copilots", files={"archive": ("zipdesk.zip", archive, "application/zip")}
    )
    assert response.status_code == 201, response.text
    folder = server.home / "copilots" / "zipdesk"
    assert (folder / "copilot.yaml").is_file()
    assert (folder / "prompts/instructions.prompty").is_file()


async def test_creating_an_existing_name_is_409(serve: ServeFactory) -> None:
    server = await serve()
    files = as_multipart(copilot_files())
    assert (await server.client.post("/api/copilots", files=files)).status_code == 201
    again = await server.client.post("/api/copilots", files=files)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "copilot_exists"
    assert staging_left(server.home) == []


async def test_invalid_copilot_yaml_is_422_with_file_line_field(serve: ServeFactory) -> None:
    server = await serve()
    text = "name: testdesk\ninstructions: hi\nmodel:\n  primary: gpt4\n  colour: x\n"
    bad = copilot_files(**{"copilot.yaml": text})
    response = await server.client.post("/api/copilots", files=as_multipart(bad))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_copilot"
    problems = {(p["file"], p["line"], p["field"]) for p in error["problems"]}
    assert ("copilot.yaml", 4, "model.primary") in problems
    assert ("copilot.yaml", 5, "model.colour") in problems
    assert all(str(server.home) not in p["message"] for p in error["problems"])
    assert not (server.home / "copilots" / "testdesk").exists()
    assert staging_left(server.home) == []


async def test_yaml_syntax_error_and_missing_file_are_located(serve: ServeFactory) -> None:
    server = await serve()
    broken = copilot_files(**{"copilot.yaml": "name: testdesk\ninstructions: [unclosed\n"})
    response = await server.client.post("/api/copilots", files=as_multipart(broken))
    assert response.status_code == 422
    [problem] = response.json()["error"]["problems"]
    assert problem["file"] == "copilot.yaml" and problem["line"] is not None
    assert "YAML" in problem["message"]

    files = copilot_files()
    del files["prompts/instructions.prompty"]
    response = await server.client.post("/api/copilots", files=as_multipart(files))
    assert response.status_code == 422
    [problem] = response.json()["error"]["problems"]
    assert (problem["file"], problem["line"], problem["field"]) == (
        "copilot.yaml",
        2,
        "instructions",
    )
    assert "does not exist" in problem["message"]


async def test_a_folder_without_copilot_yaml_is_422(serve: ServeFactory) -> None:
    server = await serve()
    response = await server.client.post(
        "/api/copilots", files=as_multipart({"readme.md": "# nothing"})
    )
    assert response.status_code == 422
    assert "copilot.yaml" in response.json()["error"]["problems"][0]["message"]


async def test_a_tool_that_fails_to_load_is_422_and_leaves_nothing(serve: ServeFactory) -> None:
    server = await serve()
    files = copilot_files(**{"tools.py": "raise RuntimeError('broken tools')\n"})
    response = await server.client.post("/api/copilots", files=as_multipart(files))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "copilot_does_not_open"
    assert "broken tools" in error["message"]
    assert not (server.home / "copilots" / "testdesk").exists()
    assert (await server.client.get("/api/copilots")).json()["copilots"] == []


async def test_update_replaces_the_folder_and_the_served_copilot(serve: ServeFactory) -> None:
    server = await serve()
    created = await server.client.post("/api/copilots", files=as_multipart(copilot_files()))
    assert created.status_code == 201
    changed = copilot_files(
        **{
            "copilot.yaml": copilot_files()["copilot.yaml"].replace(
                "limits: {max_tool_steps: 2",
                "description: second version\nlimits: {max_tool_steps: 3",
            ),
            "knowledge/printers.md": "# Printers\n\nThe printers are on floor 3.\n",
        }
    )
    response = await server.client.put("/api/copilots/testdesk", files=as_multipart(changed))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["description"] == "second version"
    assert body["definition"]["limits"]["max_tool_steps"] == 3
    assert "knowledge/printers.md" in body["files"]
    assert body["status"]["knowledge"]["documents"] == 2
    assert staging_left(server.home) == []


async def test_a_failed_update_keeps_the_previous_version(serve: ServeFactory) -> None:
    server = await serve()
    await server.client.post("/api/copilots", files=as_multipart(copilot_files()))
    folder = server.home / "copilots" / "testdesk"
    before = (folder / "copilot.yaml").read_text()

    broken = copilot_files(**{"tools.py": "import no_such_module_here\n"})
    response = await server.client.put("/api/copilots/testdesk", files=as_multipart(broken))
    assert response.status_code == 422
    assert (folder / "copilot.yaml").read_text() == before
    assert "no_such_module_here" not in (folder / "tools.py").read_text()
    detail = await server.client.get("/api/copilots/testdesk")
    assert detail.status_code == 200
    assert staging_left(server.home) == []


async def test_update_cannot_rename(serve: ServeFactory) -> None:
    server = await serve()
    await server.client.post("/api/copilots", files=as_multipart(copilot_files()))
    response = await server.client.put(
        "/api/copilots/testdesk", files=as_multipart(copilot_files("otherdesk"))
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "name_mismatch"


async def test_a_copilot_served_from_elsewhere_is_not_changed(
    serve: ServeFactory, copilot_dir: Path, settings: Settings
) -> None:
    copilot = await open_copilot(copilot_dir, settings, ScriptedModel([]))
    server = await serve(copilots=[copilot])
    before = (copilot_dir / "copilot.yaml").read_text()
    update = await server.client.put("/api/copilots/testdesk", files=as_multipart(copilot_files()))
    assert update.status_code == 409
    assert update.json()["error"]["code"] == "copilot_not_managed"
    delete = await server.client.delete("/api/copilots/testdesk")
    assert delete.status_code == 409
    assert (copilot_dir / "copilot.yaml").read_text() == before
    create = await server.client.post("/api/copilots", files=as_multipart(copilot_files()))
    assert create.status_code == 409


async def test_delete_removes_folder_knowledge_and_serving(serve: ServeFactory) -> None:
    server = await serve()
    await server.client.post("/api/copilots", files=as_multipart(copilot_files()))
    kb_files = list((server.home / "knowledge" / "copilots").glob("testdesk-*.sqlite3"))
    assert len(kb_files) == 1
    response = await server.client.delete("/api/copilots/testdesk")
    assert response.status_code == 204
    assert not (server.home / "copilots" / "testdesk").exists()
    assert not kb_files[0].exists()
    assert (await server.client.get("/api/copilots/testdesk")).status_code == 404
    # and the name is free again
    again = await server.client.post("/api/copilots", files=as_multipart(copilot_files()))
    assert again.status_code == 201


# --- hostile and oversized uploads ---------------------------------------------------------


async def test_zip_slip_is_refused_and_nothing_is_written_outside(
    serve: ServeFactory, tmp_path: Path
) -> None:
    server = await serve()
    for name in ("../../evil.txt", "/tmp/evil.txt", "ok/../../evil.txt", "..\\evil.txt"):
        archive = zip_bytes({**copilot_files(), name: "pwned"})  # type: ignore[dict-item]
        response = await server.client.post(
            "/api/copilots", files={"archive": ("c.zip", archive, "application/zip")}
        )
        assert response.status_code == 400, name
        error = response.json()["error"]
        assert error["code"] == "unsafe_path"
        assert "evil.txt" in error["message"]
    assert not found(tmp_path, "evil.txt")
    assert not exists("/tmp/evil.txt")
    assert not (server.home / "copilots" / "testdesk").exists()
    assert staging_left(server.home) == []


async def test_unsafe_file_names_are_refused(serve: ServeFactory, tmp_path: Path) -> None:
    server = await serve()
    for name in ("../evil.txt", "/etc/evil.txt", "C:/evil.txt", "a/./../../evil.txt"):
        files = as_multipart({**copilot_files(), name: "pwned"})
        response = await server.client.post("/api/copilots", files=files)
        assert response.status_code == 400, name
        assert response.json()["error"]["code"] == "unsafe_path"
    assert not found(tmp_path, "evil.txt")


async def test_symlink_entries_are_refused(serve: ServeFactory) -> None:
    server = await serve()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for relative, content in copilot_files().items():
            zf.writestr(relative, content)
        link = zipfile.ZipInfo("knowledge/passwd.md")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    response = await server.client.post(
        "/api/copilots", files={"archive": ("c.zip", buffer.getvalue(), "application/zip")}
    )
    assert response.status_code == 400
    assert "symbolic link" in response.json()["error"]["message"]
    assert not (server.home / "copilots" / "testdesk").exists()


async def test_oversized_uploads_are_413(serve: ServeFactory) -> None:
    server = await serve()
    server.management().upload_limits = UploadLimits(
        max_file_bytes=2000, max_total_bytes=6000, max_archive_bytes=9000
    )
    big_file = copilot_files(**{"knowledge/big.md": "x" * 3000})
    response = await server.client.post("/api/copilots", files=as_multipart(big_file))
    assert response.status_code == 413
    assert "per-file limit" in response.json()["error"]["message"]

    many = copilot_files(**{f"knowledge/p{i}.md": "y" * 1500 for i in range(5)})
    response = await server.client.post("/api/copilots", files=as_multipart(many))
    assert response.status_code == 413

    # a zip bomb: tiny archive, large content; refused from the headers and by counting
    bomb = zip_bytes({**copilot_files(), "knowledge/bomb.md": "z" * 5_000_000})  # type: ignore[dict-item]
    assert len(bomb) < 9000
    response = await server.client.post(
        "/api/copilots", files={"archive": ("c.zip", bomb, "application/zip")}
    )
    assert response.status_code == 413
    assert not (server.home / "copilots" / "testdesk").exists()
    assert staging_left(server.home) == []


async def test_too_many_files_is_413(serve: ServeFactory) -> None:
    server = await serve()
    server.management().upload_limits = UploadLimits(max_files=5)
    files = copilot_files(**{f"knowledge/n{i}.md": "note" for i in range(5)})
    response = await server.client.post("/api/copilots", files=as_multipart(files))
    assert response.status_code == 413


async def test_not_a_zip_and_no_upload_are_400(serve: ServeFactory) -> None:
    server = await serve()
    response = await server.client.post(
        "/api/copilots", files={"archive": ("c.zip", b"not a zip at all", "application/zip")}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_upload"
    nothing = await server.client.post("/api/copilots", files={"x": ("y", b"z", "text/plain")})
    assert nothing.status_code == 400
    assert nothing.json()["error"]["code"] == "no_upload"
    form = await server.client.post("/api/copilots", data={"x": "y"})  # not multipart
    assert form.status_code == 415
    both = await server.client.post(
        "/api/copilots",
        files=[*as_multipart(copilot_files()), ("archive", ("c.zip", zip_bytes({}), "x"))],
    )
    assert both.status_code == 400


async def test_created_copilots_are_served_again_after_a_restart(serve: ServeFactory) -> None:
    first = await serve()
    await first.client.post("/api/copilots", files=as_multipart(copilot_files()))
    await first.client.post("/api/copilots", files=as_multipart(copilot_files("second")))
    # a folder that no longer opens is skipped, not fatal, and can be fixed with PUT
    broken = first.home / "copilots" / "second" / "tools.py"
    broken.write_text("raise RuntimeError('broken at start')\n")

    again = await serve()
    names = [c["name"] for c in (await again.client.get("/api/copilots")).json()["copilots"]]
    assert names == ["testdesk"]
    fixed = await again.client.put(
        "/api/copilots/second", files=as_multipart(copilot_files("second"))
    )
    assert fixed.status_code == 200, fixed.text
    names = [c["name"] for c in (await again.client.get("/api/copilots")).json()["copilots"]]
    assert names == ["second", "testdesk"]


async def test_an_uploaded_copilot_answers_over_the_openai_api(serve: ServeFactory) -> None:
    model = FunctionModel(lambda request: "WireGuard, on port 51820 [1].", model_id="local:qwen")
    server = await serve(copilot_models={"testdesk": [model]})
    created = await server.client.post("/api/copilots", files=as_multipart(copilot_files()))
    assert created.status_code == 201
    assert created.json()["models"] == ["local:qwen"]
    response = await server.chat_client.post(
        "/v1/chat/completions",
        json={"model": "testdesk", "messages": [{"role": "user", "content": "Which VPN?"}]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"].startswith("WireGuard")


async def test_a_body_over_the_servers_upload_limit_is_413(serve: ServeFactory) -> None:
    server = await serve(limits=Limits(max_upload_bytes=50_000))
    big = as_multipart(copilot_files(**{"knowledge/big.md": "x" * 60_000}))
    response = await server.client.post("/api/copilots", files=big)
    assert response.status_code == 413
    assert not (server.home / "copilots" / "testdesk").exists()


async def test_a_chunked_body_over_the_servers_upload_limit_is_413(serve: ServeFactory) -> None:
    server = await serve(limits=Limits(max_upload_bytes=50_000))
    big = as_multipart(copilot_files(**{"knowledge/big.md": "x" * 60_000}))
    request = server.client.build_request("POST", "/api/copilots", files=big)
    body = request.read()

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: cut off while streaming
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    streamed = await server.client.post(
        "/api/copilots",
        content=chunks(),
        headers={"Content-Type": request.headers["Content-Type"]},
    )
    assert streamed.status_code == 413, streamed.text
    assert staging_left(server.home) == []
