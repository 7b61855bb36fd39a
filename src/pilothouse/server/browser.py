"""What a web browser may do to the server: the checks that stop a page the user visits
from driving the API behind their back, and CORS for the origins an operator allows.

Every request (before routing, the hot endpoints included) goes through
`BrowserGuard.check`:

- A request with a body must say it is JSON (`application/json` or `...+json`); a
  multipart form is accepted only under `/api/` with keys on. Anything else is 415:
  `text/plain`, forms and bodies without a content type are what a page can send
  cross-site without asking the browser first (a "simple request").
- Under `--no-auth` (no key stands between a page and the server):
  - the `Host` header must be a loopback name or address (`localhost`, `127.0.0.1`,
    `[::1]`, with any port): a DNS-rebinding page reaches the server under its own
    host name, and is refused (403 `host_not_allowed`);
  - a request from another origin is refused (403 `cross_origin`): an `Origin` that is
    not the server's own (or one of `[server] cors_origins`), or `Sec-Fetch-Site:
    cross-site`/`same-site` (another port of localhost is another origin) without such
    an `Origin`;
  - multipart uploads are refused outright (403 `uploads_disabled`).

With `[server] cors_origins` set, CORS answers preflights and marks answers for those
origins (Starlette's `CORSMiddleware`, around the whole app); with none (the default) a
browser page on another origin cannot read any answer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware

from pilothouse.server.asgi import ASGIApp, HTTPError, Scope

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CROSS = frozenset({b"cross-site", b"same-site"})
CORS_EXPOSED = ("x-pilothouse-model", "retry-after")


def is_loopback_host(host: bytes) -> bool:
    """Whether a `Host` header value names this machine's loopback interface."""
    try:
        text = host.decode("ascii").strip().lower()
    except UnicodeDecodeError:
        return False
    if text.startswith("["):  # [::1]:8000
        name = text[1 : text.find("]")] if "]" in text else ""
    else:
        name = text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _is_multipart(content_type: bytes) -> bool:
    return content_type.split(b";", 1)[0].strip().lower() == b"multipart/form-data"


class BrowserGuard:
    """The checks above, for one app. `check` returns the refusal, or None."""

    def __init__(self, *, no_auth: bool, origins: Sequence[str] = ()) -> None:
        self.no_auth = no_auth
        self.origins = frozenset(o.encode("ascii") for o in origins)
        self.any_origin = "*" in origins
        self._hosts: dict[bytes, bool] = {}  # Host values seen: loopback or not

    def _loopback(self, host: bytes) -> bool:
        known = self._hosts.get(host)
        if known is None:
            if len(self._hosts) >= 256:  # a client sending many names must not grow it
                self._hosts.clear()
            known = self._hosts[host] = is_loopback_host(host)
        return known

    def check(self, scope: Scope) -> HTTPError | None:
        if not self.no_auth and scope["method"] not in _BODY_METHODS:
            return None
        content_type: bytes | None = None
        has_body = False
        host = origin = fetch_site = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                has_body = value.strip() not in (b"0", b"")
            elif name == b"transfer-encoding":
                has_body = True
            elif name == b"host":
                host = value
            elif name == b"origin":
                origin = value
            elif name == b"sec-fetch-site":
                fetch_site = value
        if self.no_auth:
            refusal = self._local_only(scope, host, origin, fetch_site)
            if refusal is not None:
                return refusal
        if has_body and scope["method"] in _BODY_METHODS:
            return self._body_type(scope, content_type)
        return None

    def _local_only(
        self, scope: Scope, host: bytes | None, origin: bytes | None, fetch_site: bytes | None
    ) -> HTTPError | None:
        if host is None or not self._loopback(host):
            return HTTPError(
                403,
                "this server runs with --no-auth and answers only requests addressed to "
                "localhost, 127.0.0.1 or [::1] (the Host header); use one of those in the URL",
                code="host_not_allowed",
            )
        allowed = origin is not None and (
            self.any_origin
            or origin in self.origins
            or origin == scope.get("scheme", "http").encode() + b"://" + host
        )
        if (origin is not None and not allowed) or (
            fetch_site is not None and fetch_site.lower() in _CROSS and not allowed
        ):
            return HTTPError(
                403,
                "this server runs with --no-auth and refuses requests from web pages of "
                "other origins (Origin / Sec-Fetch-Site); to call it from a web app, list "
                "its origin in config.toml [server] cors_origins, or serve with API keys",
                code="cross_origin",
            )
        return None

    def _body_type(self, scope: Scope, content_type: bytes | None) -> HTTPError | None:
        if content_type is not None and is_json(content_type):
            return None
        if content_type is not None and _is_multipart(content_type):
            if self.no_auth:
                return HTTPError(
                    403,
                    "uploads are refused under --no-auth (a web page could send them); "
                    "create a key with `pilothouse keys create --scope admin` and serve "
                    "with keys to upload",
                    code="uploads_disabled",
                )
            if scope["path"].startswith("/api/"):
                return None
        shown = content_type.decode("latin-1") if content_type is not None else "none"
        return HTTPError(
            415,
            f"the request body must be JSON: send 'Content-Type: application/json' (got {shown})",
            code="unsupported_media_type",
        )


def with_cors(app: ASGIApp, origins: Sequence[str]) -> ASGIApp:
    """`app` behind CORS for `origins` (no credentials: keys travel in headers)."""
    middleware = CORSMiddleware(
        app,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        allow_headers=["*"],  # an allowed origin may send any header (the SDKs' x-stainless-*)
        expose_headers=list(CORS_EXPOSED),
        allow_credentials=False,
        max_age=600,
    )
    return middleware
