"""URLs in messages: no credentials, query string or fragment."""

from __future__ import annotations

import httpx
import pytest

from pilothouse.util.urls import safe_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1"),
        ("https://user:secret@llm.example/v1/chat?key=k-1#x", "https://llm.example/v1/chat"),
        ("HTTPS://LLM.Example:443/v1", "https://llm.example/v1"),
        ("http://llm.example:80", "http://llm.example/"),
        ("http://llm.example:443/v1", "http://llm.example:443/v1"),
        ("http://[::1]:8000/v1", "http://[::1]:8000/v1"),
        ("http://llm.example:99999/v1", "(invalid URL)"),
    ],
)
def test_what_a_message_shows_of_a_url(url: str, shown: str) -> None:
    assert safe_url(url) == shown


def test_an_http_clients_url_is_shown_the_same() -> None:
    """The tools' HTTP client passes httpx URLs (one safe_url for every layer)."""
    url = httpx.URL("https://me:pw@api.example:8443/v2/items?api_key=k-1#top")
    assert safe_url(url) == "https://api.example:8443/v2/items"
    assert safe_url(httpx.URL("https://api.example")) == "https://api.example/"
