"""Serving the Studio's built files (`static/`, made by `npm run build` in `web/` and
committed, so installing the package needs no Node) at `/studio/`.

The page is a single HTML file with hashed script and style files beside it; it talks
to the server only through the same public APIs as any client (`/api/...`, `/v1/...`),
with JSON bodies from its own origin, so it passes the server's browser guard. Every
answer carries a strict Content-Security-Policy: scripts, styles and connections only
from the server itself, no framing.
"""

from __future__ import annotations

import mimetypes
from functools import cache
from importlib.resources import files
from pathlib import PurePosixPath

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

STUDIO_PATH = "/studio"
_PACKAGE = "pilothouse.studio"
_FOLDER = "static"
_INDEX = "index.html"

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@cache
def studio_files() -> dict[str, bytes]:
    """The built Studio, by path relative to `static/` (read once)."""
    found: dict[str, bytes] = {}
    root = files(_PACKAGE).joinpath(_FOLDER)
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        if not folder.is_dir():
            continue
        for item in folder.iterdir():
            if item.is_dir():
                stack.append((item, f"{prefix}{item.name}/"))
            else:
                found[prefix + item.name] = item.read_bytes()
    return found


def _media_type(path: str) -> str:
    if path.endswith(".js"):
        return "text/javascript; charset=utf-8"
    if path.endswith(".css"):
        return "text/css; charset=utf-8"
    if path.endswith(".html"):
        return "text/html; charset=utf-8"
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


async def _root(request: Request) -> Response:
    return RedirectResponse(f"{STUDIO_PATH}/", status_code=307)


async def _file(request: Request) -> Response:
    path = str(request.path_params.get("path") or _INDEX)
    built = studio_files()
    if not built:
        return Response(
            "The Studio is not built: run `make studio` (npm) in the source checkout.",
            status_code=503,
            media_type="text/plain; charset=utf-8",
        )
    parts = PurePosixPath(path).parts
    data = built.get(path) if ".." not in parts else None
    if data is None:
        return Response("not found", status_code=404, media_type="text/plain; charset=utf-8")
    immutable = path.startswith("assets/")  # names carry a content hash
    headers = {
        **SECURITY_HEADERS,
        "cache-control": "public, max-age=31536000, immutable" if immutable else "no-cache",
    }
    return Response(data, media_type=_media_type(path), headers=headers)


def install_studio(app: FastAPI) -> None:
    """Serve the Studio at `/studio/` on `app` (a pilothouse.server app)."""
    app.add_route(STUDIO_PATH, _root, methods=["GET"], include_in_schema=False)
    app.add_route(f"{STUDIO_PATH}/", _file, methods=["GET"], include_in_schema=False)
    app.add_route(f"{STUDIO_PATH}/{{path:path}}", _file, methods=["GET"], include_in_schema=False)
    app.state.home = f"{STUDIO_PATH}/"  # `/` leads here rather than to the API docs
