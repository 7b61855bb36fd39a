"""Credentials from a `tools:` entry's `auth:` settings, each bound to the origin it
may be sent to (an OpenAPI document's security schemes fill in names and token URLs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pilothouse.tools.auth import (
    ApiKey,
    BasicAuth,
    BearerToken,
    CombinedCredential,
    OAuth2ClientCredentials,
    ScopedCredential,
)
from pilothouse.tools.config import (
    ApiKeyAuth,
    AuthConfig,
    BasicAuthConfig,
    BearerAuth,
    KeyTokenAuth,
    OAuth2ClientCredentialsAuth,
)
from pilothouse.tools.errors import ToolConfigError
from pilothouse.tools.openapi_doc import OpenAPIDocument


def build_credential(
    auth: AuthConfig | None,
    origin: str,
    doc: OpenAPIDocument | None,
    where: str,
    register_secret: Callable[[str], None] | None = None,
) -> ScopedCredential | None:
    """The credential for `auth`, bound to the origin of `origin`; `register_secret`
    is told every secret the credential obtains while running (OAuth access tokens)."""
    if auth is None:
        return None
    if isinstance(auth, BearerAuth):
        return BearerToken(origin, auth.token)
    if isinstance(auth, BasicAuthConfig):
        return BasicAuth(origin, auth.username, auth.password)
    if isinstance(auth, KeyTokenAuth):
        return CombinedCredential(
            origin,
            [
                ApiKey(origin, "key", auth.key, "query"),
                ApiKey(origin, "token", auth.token, "query"),
            ],
        )
    schemes = _security_schemes(doc)
    if isinstance(auth, ApiKeyAuth):
        declared = next((s for s in schemes.values() if s.get("type") == "apiKey"), {})
        name = auth.name or declared.get("name")
        location = auth.location or declared.get("in") or "header"
        if not name:
            raise ToolConfigError(f"{where}: auth api_key needs `name` (and `in`)")
        return ApiKey(origin, str(name), auth.value, location, auth.prefix)
    if isinstance(auth, OAuth2ClientCredentialsAuth):
        token_url = auth.token_url
        if token_url is None:
            for scheme in schemes.values():
                flow = (scheme.get("flows") or {}).get("clientCredentials") or {}
                if scheme.get("type") == "oauth2" and flow.get("tokenUrl"):
                    token_url = str(flow["tokenUrl"])
                    break
        if token_url is None:
            raise ToolConfigError(
                f"{where}: auth oauth2_client_credentials needs `token_url` (the document "
                "declares no clientCredentials flow)"
            )
        return OAuth2ClientCredentials(
            origin,
            token_url=token_url,
            client_id=auth.client_id,
            client_secret=auth.client_secret,
            scopes=auth.scopes,
            audience=auth.audience,
            client_auth=auth.client_auth,
            on_token=register_secret,
        )
    raise ToolConfigError(f"{where}: unsupported auth type")  # pragma: no cover


def _security_schemes(doc: OpenAPIDocument | None) -> dict[str, dict[str, Any]]:
    if doc is None:
        return {}
    schemes = (doc.data.get("components") or {}).get("securitySchemes") or {}
    out: dict[str, dict[str, Any]] = {}
    for name, scheme in schemes.items():
        resolved = doc.deref(scheme, f"/components/securitySchemes/{name}")
        if isinstance(resolved, dict):
            out[str(name)] = resolved
    return out
