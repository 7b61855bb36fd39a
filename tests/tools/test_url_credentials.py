"""URLs with `user:password@` (or `token@`) are refused wherever a URL is configured:
MCP over HTTP, OpenAPI documents and base URLs, connectors, OAuth token URLs, provider
base URLs in config.toml. The refusal never repeats the credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilothouse.errors import ConfigError
from pilothouse.storage import load_settings
from pilothouse.tools.errors import ToolConfigError
from pilothouse.tools.sources import parse_entry

SECRET = "hunter2-s3cret"
WITH_PASSWORD = f"https://alice:{SECRET}@mcp.example.com/mcp"
WITH_TOKEN = f"https://{SECRET}@api.example.com/v1"


@pytest.mark.parametrize(
    "entry",
    [
        {"mcp": WITH_PASSWORD},
        {"mcp": WITH_TOKEN},
        {"openapi": WITH_PASSWORD},
        {"openapi": "api.yaml", "base_url": WITH_TOKEN},
        {"connector": "jira", "base_url": WITH_PASSWORD},
        {
            "openapi": "https://api.example.com/openapi.json",
            "auth": {
                "type": "oauth2_client_credentials",
                "client_id": "me",
                "client_secret": "${env:CLIENT_SECRET}",
                "token_url": WITH_PASSWORD,
            },
        },
    ],
    ids=["mcp", "mcp-token", "openapi", "openapi-base", "connector", "token-url"],
)
def test_credentials_in_a_tool_url_are_refused(entry: dict[str, Any]) -> None:
    with pytest.raises(ToolConfigError, match="may not carry credentials") as refused:
        parse_entry(entry, 0, {"CLIENT_SECRET": "x" * 12}, "copilot.yaml")
    assert SECRET not in str(refused.value)


def test_a_credential_from_the_environment_is_refused_without_being_shown() -> None:
    with pytest.raises(ToolConfigError) as refused:
        parse_entry({"mcp": "${env:MCP_URL}"}, 0, {"MCP_URL": WITH_PASSWORD}, "copilot.yaml")
    assert SECRET not in str(refused.value)


def test_urls_without_credentials_still_load() -> None:
    entry = parse_entry({"mcp": "https://mcp.example.com/mcp?team=a@b"}, 0, {}, "c.yaml")
    assert entry.mcp == "https://mcp.example.com/mcp?team=a@b"  # type: ignore[attr-defined]


def test_a_provider_base_url_with_credentials_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        f'[providers.inhouse]\npreset = "openai"\nbase_url = "{WITH_PASSWORD}"\n'
    )
    with pytest.raises(ConfigError, match="may not carry credentials") as refused:
        load_settings(tmp_path, environ={})
    assert "config.toml" in str(refused.value) and SECRET not in str(refused.value)
