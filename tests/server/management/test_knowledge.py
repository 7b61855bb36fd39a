"""Knowledge over the management API: uploads with per-file outcomes, listing,
deleting, re-indexing and searching, for the default base and a copilot's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pilothouse.config import Settings
from pilothouse.models import ScriptedModel
from pilothouse.server.management.state import KnowledgeLimits

from .conftest import (
    ServeFactory,
    as_multipart,
    copilot_files,
    exists,
    found,
    open_copilot,
    write_folder,
)

HANDBOOK = (
    "# Handbook\n\n## Holidays\n\nEvery employee has 28 days of paid holiday a year. "
    "Book them in the HR portal two weeks ahead.\n\n## Expenses\n\nReceipts go to "
    "finance within 30 days; taxis need a manager's approval.\n"
)
PARKING = "Parking\n\nThe car park is behind building B. Badges open the barrier.\n"


def outcomes(body: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {f["source"]: (f["status"], f["reason"]) for f in body["files"]}


async def test_upload_reports_each_file_and_the_good_ones_are_indexed(
    serve: ServeFactory,
) -> None:
    server = await serve()
    files = as_multipart(
        {
            "handbook.md": HANDBOOK,
            "guides/parking.txt": PARKING,
            "broken.pdf": b"%PDF-1.4 this is not really a pdf",
            "program.exe": b"MZ\x90\x00",
            "../escape.md": "# no",
            "empty.md": b"",
            ".hidden.md": "# hidden",
        }
    )
    response = await server.client.post(
        "/api/knowledge/documents", files=files, data={"tags": ["hr"]}
    )
    assert response.status_code == 200, response.text
    result = outcomes(response.json())
    assert result["handbook.md"][0] == "added"
    assert result["guides/parking.txt"][0] == "added"
    assert result["broken.pdf"][0] == "failed" and "PDF" in result["broken.pdf"][1]
    assert result["program.exe"] == ("failed", "unsupported file type '.exe'")
    assert result["../escape.md"][0] == "failed" and "unsafe name" in result["../escape.md"][1]
    assert result["empty.md"][0] == "failed" and "empty" in result["empty.md"][1]
    assert result[".hidden.md"][0] == "failed"

    uploads = server.home / "knowledge" / "uploads" / "default"
    stored = {p.relative_to(uploads).as_posix() for p in uploads.rglob("*") if p.is_file()}
    assert stored == {"handbook.md", "guides/parking.txt"}  # failed files are not kept
    assert not found(server.home.parent, "escape.md")

    listing = (await server.client.get("/api/knowledge/documents")).json()["documents"]
    assert sorted(d["title"] for d in listing) == ["Handbook", "parking"]
    assert all(d["uploaded"] and d["tags"] == ["hr"] for d in listing)
    only_md = await server.client.get("/api/knowledge/documents", params={"type": "markdown"})
    assert [d["title"] for d in only_md.json()["documents"]] == ["Handbook"]

    stats = (await server.client.get("/api/knowledge")).json()
    assert stats["documents"] == 2 and stats["chunks"] >= 2
    assert stats["embedding_model"]


async def test_search_modes_top_k_and_min_score(serve: ServeFactory) -> None:
    server = await serve()
    await server.client.post(
        "/api/knowledge/documents", files=as_multipart({"handbook.md": HANDBOOK, "p.txt": PARKING})
    )
    for mode in ("hybrid", "bm25", "dense"):
        response = await server.client.post(
            "/api/knowledge/search", json={"query": "paid holiday days", "mode": mode}
        )
        assert response.status_code == 200, response.text
        top = response.json()["results"][0]
        assert "28 days" in top["text"], mode
        assert top["rank"] == 1 and top["source"].endswith("handbook.md")
        assert top["headings"][-1] == "Holidays" or mode != "bm25"
    one = await server.client.post(
        "/api/knowledge/search", json={"query": "car park badge", "top_k": 1}
    )
    assert len(one.json()["results"]) == 1
    none = await server.client.post(
        "/api/knowledge/search", json={"query": "car park", "mode": "dense", "min_score": 0.999}
    )
    assert none.json()["results"] == []
    filtered = await server.client.post(
        "/api/knowledge/search", json={"query": "holiday", "sources": ["*.txt"]}
    )
    assert all(r["source"].endswith(".txt") for r in filtered.json()["results"])


async def test_bad_search_requests_are_422(serve: ServeFactory) -> None:
    server = await serve()
    for body in (
        {"query": ""},
        {"query": "x", "mode": "fuzzy"},
        {"query": "x", "top_k": 0},
        {"query": "x", "unknown": 1},
        {},
    ):
        response = await server.client.post("/api/knowledge/search", json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["type"] == "invalid_request_error"


async def test_reupload_replaces_and_a_failed_reupload_keeps_the_old_version(
    serve: ServeFactory,
) -> None:
    server = await serve()
    first = await server.client.post(
        "/api/knowledge/documents", files=as_multipart({"h.md": HANDBOOK})
    )
    assert outcomes(first.json())["h.md"][0] == "added"
    same = await server.client.post(
        "/api/knowledge/documents", files=as_multipart({"h.md": HANDBOOK})
    )
    assert outcomes(same.json())["h.md"][0] == "unchanged"
    changed = HANDBOOK.replace("28 days", "30 days")
    second = await server.client.post(
        "/api/knowledge/documents", files=as_multipart({"h.md": changed})
    )
    assert outcomes(second.json())["h.md"][0] == "updated"
    # a damaged version of a stored document: refused, the stored one stays
    damaged = await server.client.post(
        "/api/knowledge/documents", files=as_multipart({"h.md": b"\xff\xfe\x00\x00" * 50})
    )
    assert outcomes(damaged.json())["h.md"][0] == "failed"
    stored = server.home / "knowledge" / "uploads" / "default" / "h.md"
    assert "30 days" in stored.read_text()
    assert [p.name for p in stored.parent.iterdir()] == ["h.md"]
    hits = await server.client.post("/api/knowledge/search", json={"query": "paid holiday"})
    assert "30 days" in hits.json()["results"][0]["text"]


async def test_per_file_size_and_count_limits(serve: ServeFactory) -> None:
    server = await serve()
    server.management().knowledge_limits = KnowledgeLimits(max_file_bytes=300, max_files=3)
    response = await server.client.post(
        "/api/knowledge/documents",
        files=as_multipart({"big.md": "# Big\n\n" + "word " * 200, "p.txt": PARKING}),
    )
    assert response.status_code == 200
    result = outcomes(response.json())
    assert result["big.md"][0] == "failed" and "limit" in result["big.md"][1]
    assert result["p.txt"][0] == "added"
    many = await server.client.post(
        "/api/knowledge/documents", files=as_multipart({f"n{i}.md": "# n" for i in range(4)})
    )
    assert many.status_code == 413


async def test_delete_a_document_and_its_file(serve: ServeFactory) -> None:
    server = await serve()
    await server.client.post(
        "/api/knowledge/documents", files=as_multipart({"h.md": HANDBOOK, "p.txt": PARKING})
    )
    docs = (await server.client.get("/api/knowledge/documents")).json()["documents"]
    handbook = next(d for d in docs if d["title"] == "Handbook")
    response = await server.client.delete(f"/api/knowledge/documents/{handbook['id']}")
    assert response.status_code == 204
    assert not exists(handbook["source"])
    left = (await server.client.get("/api/knowledge/documents")).json()["documents"]
    assert [d["title"] for d in left] == ["p"]
    again = await server.client.delete(f"/api/knowledge/documents/{handbook['id']}")
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "document_not_found"
    hits = await server.client.post("/api/knowledge/search", json={"query": "holiday"})
    assert all(r["title"] != "Handbook" for r in hits.json()["results"])


async def test_reindex_rebuilds_from_the_files_and_keeps_tags(serve: ServeFactory) -> None:
    server = await serve()
    await server.client.post(
        "/api/knowledge/documents", files=as_multipart({"h.md": HANDBOOK}), data={"tags": ["hr"]}
    )
    await server.client.post("/api/knowledge/documents", files=as_multipart({"p.txt": PARKING}))
    response = await server.client.post("/api/knowledge/reindex")
    assert response.status_code == 200, response.text
    statuses = sorted(f["status"] for f in response.json()["files"])
    assert statuses == ["added", "added"]
    docs = (await server.client.get("/api/knowledge/documents")).json()["documents"]
    assert {d["title"]: d["tags"] for d in docs} == {"Handbook": ["hr"], "p": []}
    hits = await server.client.post("/api/knowledge/search", json={"query": "28 days holiday"})
    assert "28 days" in hits.json()["results"][0]["text"]


async def test_a_copilots_own_knowledge_base(
    serve: ServeFactory, copilot_dir: Path, settings: Settings
) -> None:
    copilot = await open_copilot(copilot_dir, settings, ScriptedModel([]))
    server = await serve(copilots=[copilot])
    base = "/api/copilots/testdesk/knowledge"
    docs = (await server.client.get(f"{base}/documents")).json()["documents"]
    assert [Path(d["source"]).name for d in docs] == ["vpn.md"]
    assert docs[0]["uploaded"] is False

    upload = await server.client.post(f"{base}/documents", files=as_multipart({"h.md": HANDBOOK}))
    assert outcomes(upload.json())["h.md"][0] == "added"
    stored = server.home / "knowledge" / "uploads" / "copilots" / "testdesk" / "h.md"
    assert stored.is_file()
    # the default base is a different one
    assert (await server.client.get("/api/knowledge/documents")).json()["documents"] == []

    hits = await server.client.post(f"{base}/search", json={"query": "WireGuard VPN client"})
    assert "WireGuard" in hits.json()["results"][0]["text"]
    # what the copilot retrieves while answering includes the upload
    found = await copilot.knowledge.search("paid holiday")  # type: ignore[union-attr]
    assert any("28 days" in r.text for r in found)

    reindexed = await server.client.post(f"{base}/reindex")
    assert sorted(Path(f["source"]).name for f in reindexed.json()["files"]) == ["h.md", "vpn.md"]
    assert (await server.client.get(base)).json()["documents"] == 2

    vpn = next(
        d
        for d in (await server.client.get(f"{base}/documents")).json()["documents"]
        if d["title"] == "Remote access"
    )
    assert (await server.client.delete(f"{base}/documents/{vpn['id']}")).status_code == 204
    assert (copilot_dir / "knowledge/vpn.md").is_file()  # the copilot's own files stay


async def test_copilot_knowledge_404_and_409(
    serve: ServeFactory, tmp_path: Path, settings: Settings
) -> None:
    plain = copilot_files(
        "plain",
        **{
            "copilot.yaml": "name: plain\ninstructions: Be brief.\n",
        },
    )
    folder = write_folder(tmp_path / "plain", plain)
    copilot = await open_copilot(folder, settings, ScriptedModel([]))
    server = await serve(copilots=[copilot])
    missing = await server.client.get("/api/copilots/ghost/knowledge/documents")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "copilot_not_found"
    none = await server.client.post(
        "/api/copilots/plain/knowledge/search", json={"query": "anything"}
    )
    assert none.status_code == 409
    assert none.json()["error"]["code"] == "no_knowledge"


async def test_search_after_every_document_was_deleted(serve: ServeFactory) -> None:
    """An index that once held documents and holds none now answers with no results
    (a hybrid search over an empty vector matrix used to fail with a 500)."""
    server = await serve()
    await server.client.post("/api/knowledge/documents", files=as_multipart({"p.txt": PARKING}))
    [doc] = (await server.client.get("/api/knowledge/documents")).json()["documents"]
    await server.client.delete(f"/api/knowledge/documents/{doc['id']}")
    for mode in ("hybrid", "bm25", "dense"):
        response = await server.client.post(
            "/api/knowledge/search", json={"query": "car park", "mode": mode}
        )
        assert response.status_code == 200, (mode, response.text)
        assert response.json()["results"] == []
