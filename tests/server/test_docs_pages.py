"""`/docs` and `/redoc` work offline: every script, style and icon they load is served
by the app itself, from the package; `/` leads to the docs."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from pilothouse.config import Settings
from pilothouse.server.app import create_app
from tests.server.conftest import running


def test_the_docs_pages_load_only_from_this_server(tmp_path: Path) -> None:
    settings = Settings.from_sources(home=tmp_path / "home", environ={})
    with (
        running(create_app(settings, no_auth=True)) as (base, _),
        httpx.Client(base_url=base) as http,
    ):
        home = http.get("/", follow_redirects=False)
        assert home.status_code == 307 and home.headers["location"] == "/docs"
        for page, wanted in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
            html = http.get(page)
            assert html.status_code == 200 and "text/html" in html.headers["content-type"]
            # nothing from outside: no absolute URL anywhere in the page
            assert re.findall(r"https?://", html.text) == [], page
            assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
            assert any(a.endswith(wanted) for a in assets), assets
            assert "/openapi.json" in html.text
            for asset in assets:
                fetched = http.get(asset)
                assert fetched.status_code == 200, asset
                assert len(fetched.content) > 1000, asset
        assert http.get("/openapi.json").json()["info"]["title"] == "Pilothouse"
        assert http.get("/docs/oauth2-redirect").status_code == 200
