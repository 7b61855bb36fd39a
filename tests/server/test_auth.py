"""Keys and scopes: hashed storage, 401/403, per-key rate limits with Retry-After,
revocation seen by a running server, --no-auth only on loopback, the CLI, and the
`require_scope` dependency the management API uses."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import httpx
import openai
import pytest
from fastapi import Depends
from typer.testing import CliRunner

from pilothouse.cli.app import app as cli
from pilothouse.config import Settings
from pilothouse.errors import ConfigError, NotFoundError
from pilothouse.models import FunctionModel
from pilothouse.server.app import create_app, is_loopback
from pilothouse.server.auth import Principal, RateLimiter, require_scope
from pilothouse.server.keys import KeyStore, parse_rate
from tests.server.conftest import make_key, running

MODEL = "test:echo"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


def echo_app(settings: Settings, store: KeyStore):  # type: ignore[no-untyped-def]
    app = create_app(
        settings, keys=store, models={MODEL: FunctionModel(lambda r: "pong", model_id=MODEL)}
    )

    admin = Depends(require_scope("admin"))

    async def probe(principal: Principal = admin) -> dict[str, str]:
        return {"key": principal.key_id or "", "name": principal.name}

    app.add_api_route("/api/probe", probe, methods=["GET"])
    return app


def test_keys_are_stored_hashed_never_in_clear(settings: Settings, keys: KeyStore) -> None:
    key, record = keys.create("ci", ["models", "chat:helpdesk"], rate_per_min=30)
    assert key.startswith("ph-") and len(key) > 40
    keys.close()
    raw = b"".join(p.read_bytes() for p in settings.home.glob("pilothouse.db*"))
    assert key.encode() not in raw
    with sqlite3.connect(settings.database_path) as db:
        rows = db.execute("SELECT * FROM api_keys").fetchall()
    assert len(rows) == 1
    assert hashlib.sha256(key.encode()).hexdigest() in rows[0]
    assert not any(key in str(v) for v in rows[0])
    again = KeyStore(settings.database_path)
    assert [r.id for r in again.list()] == [record.id]
    assert again.list()[0].scopes == ("models", "chat:helpdesk")
    assert again.principal_for_hash(hashlib.sha256(key.encode()).hexdigest()) is not None
    again.close()


def test_scopes_and_rates_are_checked(keys: KeyStore) -> None:
    with pytest.raises(ConfigError, match="unknown scope"):
        keys.create("x", ["root"])
    with pytest.raises(ConfigError, match="at least one scope"):
        keys.create("x", [])
    assert parse_rate("60/min") == 60
    assert parse_rate("2/s") == 120
    assert parse_rate("120/hour") == 2
    assert parse_rate("15") == 15
    assert parse_rate(None) is None
    with pytest.raises(ConfigError):
        parse_rate("fast")
    with pytest.raises(NotFoundError):
        keys.revoke("key_nope")


def test_missing_wrong_and_revoked_keys_get_401(settings: Settings, keys: KeyStore) -> None:
    key = make_key(keys, "models")
    with running(echo_app(settings, keys)) as (base, _):
        with httpx.Client(base_url=base) as http:
            missing = http.post("/v1/chat/completions", json=BODY)
            assert missing.status_code == 401
            assert missing.json()["error"]["code"] == "missing_api_key"
            assert missing.headers["www-authenticate"] == "Bearer"
            ok = http.post("/v1/chat/completions", json=BODY, headers={"X-API-Key": key})
            assert ok.status_code == 200
        with openai.OpenAI(base_url=f"{base}/v1", api_key="ph-wrong", max_retries=0) as sdk:
            with pytest.raises(openai.AuthenticationError) as wrong:
                sdk.chat.completions.create(**BODY)  # type: ignore[call-overload]
            assert wrong.value.body["code"] == "invalid_api_key"  # type: ignore[index]
        with openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0) as sdk:
            assert sdk.chat.completions.create(**BODY).choices[0].message.content == "pong"  # type: ignore[call-overload]
            other = KeyStore(settings.database_path)  # as `pilothouse keys revoke` would
            other.revoke(other.list()[0].id)
            other.close()
            time.sleep(KeyStore.recheck_s + 0.1)  # the server looks for changes this often
            with pytest.raises(openai.AuthenticationError):
                sdk.chat.completions.create(**BODY)  # type: ignore[call-overload]


def test_scopes_give_403(settings: Settings, keys: KeyStore) -> None:
    chat_only = make_key(keys, "chat:*")
    admin = make_key(keys, "admin")
    with running(echo_app(settings, keys)) as (base, _), httpx.Client(base_url=base) as http:
        denied = http.post(
            "/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {chat_only}"}
        )
        assert denied.status_code == 403
        assert denied.json()["error"] == {
            "message": denied.json()["error"]["message"],
            "type": "permission_error",
            "param": None,
            "code": "insufficient_scope",
        }
        assert "models" in denied.json()["error"]["message"]
        probe = http.get("/api/probe", headers={"Authorization": f"Bearer {chat_only}"})
        assert probe.status_code == 403 and probe.json()["error"]["code"] == "insufficient_scope"
        assert http.get("/api/probe").status_code == 401
        allowed = http.get("/api/probe", headers={"Authorization": f"Bearer {admin}"})
        assert allowed.status_code == 200 and allowed.json()["key"].startswith("key_")
        everything = http.post(
            "/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {admin}"}
        )
        assert everything.status_code == 200  # admin implies every scope


def test_rate_limit_answers_429_with_retry_after(settings: Settings, keys: KeyStore) -> None:
    limited = make_key(keys, "models", rate=2)
    free = make_key(keys, "models")
    with running(echo_app(settings, keys)) as (base, _), httpx.Client(base_url=base) as http:
        auth = {"Authorization": f"Bearer {limited}"}
        statuses = [http.post("/v1/chat/completions", json=BODY, headers=auth) for _ in range(3)]
        assert [r.status_code for r in statuses] == [200, 200, 429]
        refused = statuses[2]
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(refused.headers["retry-after"]) <= 30
        other = http.post(
            "/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {free}"}
        )
        assert other.status_code == 200  # limits are per key
        with (
            openai.OpenAI(base_url=f"{base}/v1", api_key=limited, max_retries=0) as sdk,
            pytest.raises(openai.RateLimitError),
        ):
            sdk.chat.completions.create(**BODY)  # type: ignore[call-overload]


def test_listing_models_counts_against_the_rate_limit(settings: Settings, keys: KeyStore) -> None:
    limited = make_key(keys, "models", rate=2)
    with running(echo_app(settings, keys)) as (base, _), httpx.Client(base_url=base) as http:
        auth = {"Authorization": f"Bearer {limited}"}
        statuses = [
            http.get("/v1/models", headers=auth).status_code,
            http.get(f"/v1/models/{MODEL}", headers=auth).status_code,
            http.get("/v1/models", headers=auth).status_code,
        ]
        assert statuses == [200, 200, 429]
        refused = http.get(f"/v1/models/{MODEL}", headers=auth)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert int(refused.headers["retry-after"]) >= 1
        # the chat endpoint shares the same bucket
        assert http.post("/v1/chat/completions", json=BODY, headers=auth).status_code == 429


def test_readyz_names_copilots_and_routes_only_to_a_key(
    settings: Settings, keys: KeyStore, copilot_dir: Path
) -> None:
    key = make_key(keys, "chat:testdesk")
    app = create_app(
        settings,
        keys=keys,
        copilots=[copilot_dir],
        copilot_models={"testdesk": [FunctionModel(lambda r: "pong", model_id="local:qwen")]},
        routes={"routes": {"secret-route": {"targets": ["local:qwen2.5-coder-0.5b"]}}},
    )
    with running(app) as (base, _), httpx.Client(base_url=base) as http:
        for headers in ({}, {"Authorization": "Bearer ph-not-a-key"}):
            anonymous = http.get("/readyz", headers=headers)
            assert set(anonymous.json()) == {"status"}, anonymous.text
            assert "testdesk" not in anonymous.text and "secret-route" not in anonymous.text
        keyed = http.get("/readyz", headers={"Authorization": f"Bearer {key}"})
        assert keyed.status_code == anonymous.status_code
        assert keyed.json()["copilots"] == ["testdesk"]
        assert keyed.json()["routes"] == ["secret-route"]
        assert keyed.json()["status"] == anonymous.json()["status"]


def test_token_bucket_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert limiter.check("k", 60) is None
    for _ in range(59):
        assert limiter.check("k", 60) is None
    wait = limiter.check("k", 60)
    assert wait is not None and 0.9 < wait <= 1.0
    now[0] += 1.0
    assert limiter.check("k", 60) is None


def test_no_auth_only_on_loopback(settings: Settings) -> None:
    for host in ("0.0.0.0", "192.168.1.5", "example.com", "::"):
        with pytest.raises(ConfigError, match="loopback"):
            create_app(settings, no_auth=True, host=host)
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert is_loopback(host)
        create_app(settings, no_auth=True, host=host)


def test_without_keys_the_server_refuses_to_start(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="no API keys"):
        create_app(settings)


def test_keys_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"PILOTHOUSE_HOME": str(tmp_path / "home")}
    made = runner.invoke(
        cli, ["keys", "create", "--scope", "admin", "--name", "ops", "--rate", "10/min"], env=env
    )
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("ph-")
    listed = runner.invoke(cli, ["keys", "list", "--json"], env=env)
    assert '"name": "ops"' in listed.stdout and key not in listed.stdout
    assert '"rate_per_min": 10' in listed.stdout
    assert runner.invoke(cli, ["keys", "revoke", "ops"], env=env).exit_code == 0
    assert '"ops"' not in runner.invoke(cli, ["keys", "list", "--json"], env=env).stdout
    bad = runner.invoke(cli, ["keys", "create", "--scope", "root"], env=env)
    assert bad.exit_code == 2 and "unknown scope" in bad.output
    refused = runner.invoke(cli, ["serve", "--no-auth", "--host", "0.0.0.0"], env=env)
    assert refused.exit_code == 2 and "loopback" in refused.output
