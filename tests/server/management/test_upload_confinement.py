"""An uploaded copilot's knowledge stays in its folder: an absolute path, a deep `../`
or an absolute glob is refused (422 naming copilot.yaml, its line and field) and no
server file is indexed; `allow_outside_folder` is refused in an upload; an alias bomb
in an uploaded copilot.yaml is refused fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bombs import alias_bomb

from .conftest import ServeFactory, as_multipart

SECRET_TEXT = "The root password of the payroll server is Tr0ub4dor."


def upload(knowledge: str) -> dict[str, str]:
    return {
        "copilot.yaml": f"name: leaky\ninstructions: You help.\nknowledge:\n{knowledge}",
        "knowledge/vpn.md": "# VPN\n\nThe VPN client is WireGuard.\n",
    }


@pytest.fixture
def server_files(tmp_path: Path) -> Path:
    folder = tmp_path / "server-files"
    folder.mkdir()
    (folder / "payroll.md").write_text(f"# Payroll\n\n{SECRET_TEXT}\n")
    return folder


@pytest.mark.parametrize(
    "source",
    [
        "{files}/payroll.md",
        "knowledge/../../../../../../../../../../../../{files}",
        "{files}/*.md",
        "{files}/../**/payroll.md",
    ],
    ids=["absolute", "deep-dotdot", "absolute-glob", "recursive-glob"],
)
async def test_an_escaping_source_is_refused_and_nothing_indexed(
    serve: ServeFactory, server_files: Path, source: str
) -> None:
    server = await serve()
    deep = source.startswith("knowledge/")  # relative: the absolute path below the ../s
    source = source.format(files=str(server_files).lstrip("/") if deep else server_files)
    response = await server.client.post(
        "/api/copilots", files=as_multipart(upload(f"  sources: ['{source}']\n"))
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_copilot"
    [problem] = error["problems"]
    assert (problem["file"], problem["line"], problem["field"]) == (
        "copilot.yaml",
        4,
        "knowledge.sources.0",
    )
    assert "outside the copilot folder" in problem["message"]
    assert "allow_outside_folder" not in problem["message"]  # not an option for uploads
    assert not (server.home / "copilots" / "leaky").exists()
    hits = await server.client.post("/api/knowledge/search", json={"query": "payroll password"})
    assert SECRET_TEXT not in hits.text


async def test_allow_outside_folder_is_refused_in_an_upload(
    serve: ServeFactory, server_files: Path
) -> None:
    server = await serve()
    knowledge = f"  sources: ['{server_files}/payroll.md']\n  allow_outside_folder: true\n"
    response = await server.client.post("/api/copilots", files=as_multipart(upload(knowledge)))
    assert response.status_code == 422, response.text
    fields = {p["field"] for p in response.json()["error"]["problems"]}
    assert fields == {"knowledge.allow_outside_folder", "knowledge.sources.0"}


async def test_an_uploaded_copilot_with_inside_sources_is_served(serve: ServeFactory) -> None:
    server = await serve()
    response = await server.client.post(
        "/api/copilots", files=as_multipart(upload("  sources: [knowledge, 'knowledge/*.md']\n"))
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"]["knowledge"]["documents"] == 1


async def test_an_alias_bomb_in_an_uploaded_copilot_yaml_is_refused(serve: ServeFactory) -> None:
    server = await serve()
    files = upload("  sources: [knowledge]\n")
    files["copilot.yaml"] += alias_bomb(levels=6)
    response = await server.client.post("/api/copilots", files=as_multipart(files))
    assert response.status_code == 422, response.text
    [problem] = response.json()["error"]["problems"]
    assert problem["file"] == "copilot.yaml" and "alias" in problem["message"]
