"""What a web page can make the server do: under --no-auth, nothing (Host, Origin and
Sec-Fetch-Site checks, no multipart uploads); with keys, no body that is not JSON;
CORS only for the origins config.toml lists. Every test talks to a real server on
127.0.0.1 over sockets, the way a browser would."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pilothouse.config import Settings
from pilothouse.errors import ConfigError
from pilothouse.models import FunctionModel
from pilothouse.server.app import create_app
from pilothouse.server.browser import is_loopback_host
from pilothouse.server.keys import KeyStore
from tests.server.conftest import make_key, running

MODEL = "test:echo"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
EVIL = "http://evil.example"


def _settings(tmp_path: Path, **server: Any) -> Settings:
    data = {"server": server} if server else None
    return Settings.from_sources(home=tmp_path / "home", file_data=data, environ={})


def _app(settings: Settings, **options: Any) -> Any:
    return create_app(
        settings, models={MODEL: FunctionModel(lambda r: "pong", model_id=MODEL)}, **options
    )


@pytest.fixture
def local(tmp_path: Path) -> Iterator[str]:
    """A --no-auth server on 127.0.0.1."""
    with running(_app(_settings(tmp_path), no_auth=True)) as (base, _):
        yield base


def _copilot_zip(marker: Path) -> bytes:
    """A copilot whose tools.py writes `marker` when it is imported."""
    files = {
        "copilot.yaml": "name: planted\ninstructions: hi\ntools:\n  - python: tools.py\n",
        "tools.py": (
            "from pathlib import Path\n"
            f"Path({str(marker)!r}).write_text('ran')\n"
            "def noop() -> str:\n    '''Nothing.'''\n    return ''\n"
        ),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buffer.getvalue()


# --- --no-auth: a page the user visits ------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},  # a current browser
        {"Origin": EVIL},
        {},  # a browser that sends neither (or a form in an old one)
    ],
)
def test_a_forged_cross_site_upload_never_runs_code(
    local: str, tmp_path: Path, headers: dict[str, str]
) -> None:
    marker = tmp_path / "pwned"
    archive = _copilot_zip(marker)
    reply = httpx.post(
        f"{local}/api/copilots",
        files={"archive": ("c.zip", archive, "application/zip")},
        headers=headers,
        timeout=30,
    )
    assert reply.status_code == 403
    assert reply.json()["error"]["code"] in ("cross_origin", "uploads_disabled")
    assert not marker.exists()
    assert httpx.get(f"{local}/api/copilots").json()["copilots"] == []


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
        ({}, 415, "unsupported_media_type"),  # fetch() with a Blob: no content type at all
        ({"Content-Type": "text/plain", "Origin": EVIL}, 403, "cross_origin"),
        ({"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"}, 403, "cross_origin"),
    ],
)
def test_a_forged_cross_site_chat_is_refused(
    local: str, headers: dict[str, str], status: int, code: str
) -> None:
    body = b'{"model": "test:echo", "messages": [{"role": "user", "content": "hi"}]}'
    reply = httpx.post(f"{local}/v1/chat/completions", content=body, headers=headers)
    assert reply.status_code == status
    assert reply.json()["error"]["code"] == code


def test_a_dns_rebinding_host_is_refused(local: str) -> None:
    port = local.rsplit(":", 1)[1]
    for host in (f"attacker.example:{port}", "attacker.example", f"10.0.0.5:{port}"):
        reply = httpx.get(f"{local}/v1/models", headers={"Host": host})
        assert reply.status_code == 403, host
        assert reply.json()["error"]["code"] == "host_not_allowed"
        chat = httpx.post(f"{local}/v1/chat/completions", json=CHAT, headers={"Host": host})
        assert chat.status_code == 403, host
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "127.1.2.3", "[::1]:8000"):
        assert httpx.get(f"{local}/v1/models", headers={"Host": host}).status_code == 200, host


def test_another_origin_of_the_same_site_is_refused_and_the_own_origin_is_not(local: str) -> None:
    port = local.rsplit(":", 1)[1]
    same_site = {"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"}
    reply = httpx.post(f"{local}/v1/chat/completions", json=CHAT, headers=same_site)
    assert reply.status_code == 403
    assert reply.json()["error"]["code"] == "cross_origin"
    for own in (
        {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},  # typed into the address bar
        {},  # curl, the SDKs
    ):
        reply = httpx.post(f"{local}/v1/chat/completions", json=CHAT, headers=own)
        assert reply.status_code == 200, own
        assert reply.json()["choices"][0]["message"]["content"] == "pong"


def test_json_endpoints_of_the_management_api_need_json_too(local: str) -> None:
    body = b'{"approve": ["t1"]}'
    for headers in ({"Content-Type": "text/plain"}, {}):
        reply = httpx.post(f"{local}/api/approvals/0123abcd", content=body, headers=headers)
        assert reply.status_code == 415
    reply = httpx.post(
        f"{local}/api/approvals/0123abcd",
        content=body,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert reply.status_code == 404  # past the checks: no such run


def test_a_cors_allowed_origin_may_call_a_local_server(tmp_path: Path) -> None:
    settings = _settings(tmp_path, cors_origins=["http://localhost:5173"])
    with running(_app(settings, no_auth=True)) as (base, _):
        headers = {"Origin": "http://localhost:5173", "Sec-Fetch-Site": "same-site"}
        reply = httpx.post(f"{base}/v1/chat/completions", json=CHAT, headers=headers)
        assert reply.status_code == 200
        assert reply.headers["access-control-allow-origin"] == "http://localhost:5173"
        reply = httpx.post(f"{base}/v1/chat/completions", json=CHAT, headers={"Origin": EVIL})
        assert reply.status_code == 403


def test_any_origin_is_refused_with_no_auth(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cors_origins"):
        _app(_settings(tmp_path, cors_origins=["*"]), no_auth=True)


def test_loopback_host_names() -> None:
    for host in (b"localhost", b"LOCALHOST:80", b"127.0.0.1", b"127.0.0.1:8000", b"[::1]:1"):
        assert is_loopback_host(host), host
    for host in (b"", b"localhost.evil.example", b"0.0.0.0", b"[::2]", b"10.0.0.1:80", b"\xff"):
        assert not is_loopback_host(host), host


# --- keyed deployments --------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Settings, KeyStore]]:
    settings = _settings(tmp_path)
    keys = KeyStore(settings.database_path)
    yield settings, keys
    keys.close()


def test_with_keys_a_chat_body_must_be_json(store: tuple[Settings, KeyStore]) -> None:
    settings, keys = store
    key = make_key(keys, "models")
    with running(_app(settings, keys=keys)) as (base, _):
        auth = {"Authorization": f"Bearer {key}"}
        body = b'{"model": "test:echo", "messages": [{"role": "user", "content": "hi"}]}'
        plain = httpx.post(
            f"{base}/v1/chat/completions",
            content=body,
            headers={**auth, "Content-Type": "text/plain"},
        )
        assert plain.status_code == 415
        assert plain.json()["error"]["code"] == "unsupported_media_type"
        ok = httpx.post(f"{base}/v1/chat/completions", json=CHAT, headers=auth)
        assert ok.status_code == 200
        # keyed servers serve any host name (they sit behind proxies and DNS names)
        named = httpx.get(f"{base}/v1/models", headers={**auth, "Host": "api.example.com"})
        assert named.status_code == 200


def test_cors_is_off_by_default(store: tuple[Settings, KeyStore]) -> None:
    settings, keys = store
    key = make_key(keys, "models")
    with running(_app(settings, keys=keys)) as (base, _):
        reply = httpx.get(
            f"{base}/v1/models",
            headers={"Authorization": f"Bearer {key}", "Origin": "https://app.example.com"},
        )
        assert reply.status_code == 200
        assert "access-control-allow-origin" not in reply.headers


def test_cors_for_the_configured_origins(tmp_path: Path) -> None:
    settings = _settings(tmp_path, cors_origins=["https://app.example.com"])
    keys = KeyStore(settings.database_path)
    key = make_key(keys, "models")
    try:
        with running(_app(settings, keys=keys)) as (base, _):
            preflight = {
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
            }
            reply = httpx.options(f"{base}/v1/chat/completions", headers=preflight)
            assert reply.status_code == 200
            assert reply.headers["access-control-allow-origin"] == "https://app.example.com"
            assert "x-stainless-os" in reply.headers["access-control-allow-headers"].lower()
            assert "access-control-allow-credentials" not in reply.headers
            other = httpx.options(
                f"{base}/v1/chat/completions", headers={**preflight, "Origin": EVIL}
            )
            assert other.status_code == 400
            assert "access-control-allow-origin" not in other.headers
            chat = httpx.post(
                f"{base}/v1/chat/completions",
                json=CHAT,
                headers={"Authorization": f"Bearer {key}", "Origin": "https://app.example.com"},
            )
            assert chat.status_code == 200
            assert chat.headers["access-control-allow-origin"] == "https://app.example.com"
            assert "x-pilothouse-model" in chat.headers["access-control-expose-headers"]
    finally:
        keys.close()


def test_a_cors_origin_that_is_not_an_origin_is_a_config_error(tmp_path: Path) -> None:
    from pilothouse.storage import load_settings

    (tmp_path / "config.toml").write_text('[server]\ncors_origins = ["https://app.example.com/"]\n')
    with pytest.raises(
        ConfigError, match=r"config\.toml: server\.cors_origins: .*not a web origin"
    ):
        load_settings(tmp_path, environ={})
