"""The Studio's committed build matches its sources, and the server serves it safely:
without Node, from the package, with a strict Content-Security-Policy."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import httpx

from pilothouse.config import Settings
from pilothouse.server.app import create_app
from pilothouse.studio import install_studio, studio_files

STUDIO = Path(__file__).resolve().parents[2] / "src/pilothouse/studio"
WEB = STUDIO / "web"
SOURCES = ("index.html", "package.json", "package-lock.json", "vite.config.js", "stamp.mjs", "src")


def sources_sha256() -> tuple[str, int]:
    """What web/stamp.mjs computes: SHA-256 over the sorted source files, each as
    'path\\0bytes\\0'."""
    files: list[str] = []
    for name in SOURCES:
        path = WEB / name
        if path.is_dir():
            files += [p.relative_to(WEB).as_posix() for p in path.rglob("*") if p.is_file()]
        else:
            files.append(name)
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0")
        digest.update((WEB / name).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest(), len(files)


def test_the_committed_build_comes_from_the_sources() -> None:
    info = json.loads((STUDIO / "static/build-info.json").read_text())
    digest, count = sources_sha256()
    assert (info["sources_sha256"], info["files"]) == (digest, count), (
        "src/pilothouse/studio/static/ was not rebuilt after a change to web/: "
        "run `make studio` and commit static/"
    )


def test_the_page_names_only_files_that_are_built() -> None:
    built = studio_files()
    index = built["index.html"].decode()
    named = re.findall(r'(?:src|href)="/studio/([^"]+)"', index)
    assert named and all(name in built for name in named)
    assert not re.search(r'(?:src|href)="https?://', index)  # nothing from elsewhere


async def test_served_at_studio_with_a_strict_policy(tmp_path: Path) -> None:
    settings = Settings.from_sources(home=tmp_path, environ={})
    app = create_app(settings, no_auth=True)
    install_studio(app)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8642") as client,
    ):
        home = await client.get("/")
        moved = await client.get("/studio")
        page = await client.get("/studio/")
        script = next(n for n in studio_files() if n.endswith(".js"))
        asset = await client.get(f"/studio/{script}")
        missing = await client.get("/studio/assets/nothere.js")
        climbing = await client.get("/studio/..%2F..%2Fpyproject.toml")
        rebinding = await client.get("/studio/", headers={"Host": "attacker.example"})
    assert moved.status_code == 307 and moved.headers["location"] == "/studio/"
    # once the Studio is served, the server's home page is the Studio, not the API docs
    assert home.status_code == 307 and home.headers["location"] == "/studio/"
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "script-src 'self';" in policy and "unsafe-eval" not in policy
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-cache"
    assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/javascript")
    assert "immutable" in asset.headers["cache-control"]
    assert missing.status_code == 404 and climbing.status_code == 404
    assert rebinding.status_code == 403  # under --no-auth, only loopback Host names
