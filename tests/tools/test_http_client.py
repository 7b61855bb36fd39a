"""The safe client's limits and credential scoping, against real loopback servers."""

from __future__ import annotations

import asyncio
import logging

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from pilothouse.testing.loopback import serve_app
from pilothouse.testing.ports import closed_port
from pilothouse.tools.auth import ApiKey, BasicAuth, BearerToken, OAuth2ClientCredentials
from pilothouse.tools.errors import (
    HTTPLimitError,
    ServiceAuthError,
    ServiceNotFoundError,
    ServiceRateLimitedError,
    ServiceUnavailableError,
    ToolTimeoutError,
)
from pilothouse.tools.http import HttpLimits, SafeHttpClient
from pilothouse.tools.netpolicy import NetworkPolicy
from pilothouse.tools.status import error_for_status
from pilothouse.util.urls import safe_url
from tests.tools.conftest import port_of


class Recorder:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.headers: list[dict[str, str]] = []
        self.queries: list[str] = []

        async def echo(request: Request) -> Response:
            self.headers.append(dict(request.headers))
            self.queries.append(request.url.query)
            return JSONResponse({"path": request.url.path})

        async def big(request: Request) -> Response:
            return Response(b"x" * 50_000, media_type="text/plain")

        async def stream(request: Request) -> Response:
            async def body():  # no content-length: chunked
                for _ in range(100):
                    yield b"y" * 1000

            return StreamingResponse(body(), media_type="text/plain")

        async def slow(request: Request) -> Response:
            await asyncio.sleep(3)
            return JSONResponse({})

        async def redirect(request: Request) -> Response:
            return RedirectResponse(request.query_params["to"], status_code=307)

        async def token(request: Request) -> Response:
            form = await request.form()
            self.headers.append(dict(request.headers))
            if form.get("client_secret") != "cs-123" or form.get("grant_type") != (
                "client_credentials"
            ):
                return JSONResponse(
                    {"error": "invalid_client", "error_description": "bad secret"}, 401
                )
            return JSONResponse({"access_token": "tok-abc", "expires_in": 3600})

        self.app = Starlette(
            routes=[
                Route("/echo", echo, methods=["GET", "POST"]),
                Route("/big", big),
                Route("/stream", stream),
                Route("/slow", slow),
                Route("/redirect", redirect, methods=["GET", "POST"]),
                Route("/token", token, methods=["POST"]),
            ]
        )


def policy_for(*urls: str) -> NetworkPolicy:
    return NetworkPolicy(allow=tuple(f"127.0.0.1:{port_of(u)}" for u in urls))


async def test_response_size_limit_with_and_without_content_length() -> None:
    rec = Recorder()
    with serve_app(rec.app) as base:
        limits = HttpLimits(max_response_bytes=10_000)
        async with SafeHttpClient(policy_for(base), limits=limits) as client:
            with pytest.raises(HTTPLimitError, match="50000 bytes is over the 10000-byte limit"):
                await client.request("GET", f"{base}/big")
            with pytest.raises(HTTPLimitError, match="over the 10000-byte limit"):
                await client.request("GET", f"{base}/stream")
            ok = await client.request("GET", f"{base}/big", max_bytes=60_000)
            assert len(ok.content) == 50_000


async def test_time_limit() -> None:
    rec = Recorder()
    with serve_app(rec.app) as base:
        async with SafeHttpClient(policy_for(base), limits=HttpLimits(timeout_s=0.3)) as client:
            with pytest.raises(ToolTimeoutError, match=r"took longer than 0\.3 s"):
                await client.request("GET", f"{base}/slow")


async def test_refused_connection_is_a_typed_error() -> None:
    port = closed_port()
    async with SafeHttpClient(NetworkPolicy(allow=(f"127.0.0.1:{port}",))) as client:
        with pytest.raises(ServiceUnavailableError, match="cannot connect"):
            await client.request("GET", f"http://127.0.0.1:{port}/x")


async def test_credentials_go_only_to_their_own_origin() -> None:
    good, other = Recorder(), Recorder()
    with serve_app(good.app) as base, serve_app(other.app) as elsewhere:
        policy = policy_for(base, elsewhere)
        bearer = BearerToken(base, SecretStr("s3cret-token"))
        async with SafeHttpClient(policy) as client:
            await client.request("GET", f"{base}/echo", credential=bearer)
            assert good.headers[-1]["authorization"] == "Bearer s3cret-token"
            # the same credential, used for another host, is not applied
            await client.request("GET", f"{elsewhere}/echo", credential=bearer)
            assert "authorization" not in other.headers[-1]
            # a redirect from the right host to another drops it, and drops explicit ones
            await client.request(
                "GET",
                f"{base}/redirect",
                params={"to": f"{elsewhere}/echo"},
                credential=bearer,
                headers={"Authorization": "Basic Zm9vOmJhcg==", "Cookie": "sid=1"},
            )
            leaked = other.headers[-1]
            assert "authorization" not in leaked and "cookie" not in leaked
            # a same-origin redirect keeps it
            await client.request(
                "GET", f"{base}/redirect", params={"to": "/echo"}, credential=bearer
            )
            assert good.headers[-1]["authorization"] == "Bearer s3cret-token"


async def test_query_keys_stay_on_their_host_and_out_of_messages() -> None:
    good, other = Recorder(), Recorder()
    with serve_app(good.app) as base, serve_app(other.app) as elsewhere:
        key = ApiKey(base, "key", SecretStr("k-999"), location="query")
        async with SafeHttpClient(policy_for(base, elsewhere)) as client:
            await client.request(
                "GET", f"{base}/redirect", params={"to": f"{elsewhere}/echo"}, credential=key
            )
        assert "k-999" not in other.queries[-1]
    assert safe_url(f"{base}/x?key=k-999&token=t") == f"{base}/x"


async def test_basic_and_cookie_keys() -> None:
    rec = Recorder()
    with serve_app(rec.app) as base:
        async with SafeHttpClient(policy_for(base)) as client:
            await client.request(
                "GET", f"{base}/echo", credential=BasicAuth(base, "me@x.org", SecretStr("pw"))
            )
            assert rec.headers[-1]["authorization"] == "Basic bWVAeC5vcmc6cHc="
            await client.request(
                "GET", f"{base}/echo", credential=ApiKey(base, "sid", SecretStr("c1"), "cookie")
            )
            assert rec.headers[-1]["cookie"] == "sid=c1"


async def test_oauth2_client_credentials_token_is_fetched_once_and_cached() -> None:
    rec = Recorder()
    with serve_app(rec.app) as base:
        cred = OAuth2ClientCredentials(
            base, token_url=f"{base}/token", client_id="app", client_secret=SecretStr("cs-123")
        )
        async with SafeHttpClient(policy_for(base)) as client:
            for _ in range(3):
                await client.request("GET", f"{base}/echo", credential=cred)
        assert cred.fetch_count == 1
        assert rec.headers[-1]["authorization"] == "Bearer tok-abc"
        wrong = OAuth2ClientCredentials(
            base, token_url=f"{base}/token", client_id="app", client_secret=SecretStr("nope")
        )
        async with SafeHttpClient(policy_for(base)) as client:
            with pytest.raises(ServiceAuthError, match="invalid_client bad secret") as info:
                await client.request("GET", f"{base}/echo", credential=wrong)
        assert "nope" not in str(info.value)


def test_status_errors_are_typed_and_readable() -> None:
    assert isinstance(error_for_status(401, "bad", {}, where="GET x"), ServiceAuthError)
    limited = error_for_status(429, "slow down", {"retry-after": "7"}, where="GET x")
    assert isinstance(limited, ServiceRateLimitedError) and limited.retry_after == 7
    assert "retry after 7 s" in str(limited)
    assert isinstance(error_for_status(404, "", {}, where="GET x"), ServiceNotFoundError)
    assert isinstance(error_for_status(503, "", {}, where="GET x"), ServiceUnavailableError)


async def test_no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    caplog.set_level(logging.DEBUG)
    with serve_app(rec.app) as base:
        key = ApiKey(base, "token", SecretStr("tok-LEAK"), location="query")
        async with SafeHttpClient(policy_for(base)) as client:
            await client.request("GET", f"{base}/echo", params={"q": "x"}, credential=key)
        assert rec.queries[-1] == "q=x&token=tok-LEAK"
    assert "tok-LEAK" not in caplog.text
    assert "tok-LEAK" not in repr(key)
