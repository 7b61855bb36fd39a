"""URLs as messages show them."""

from __future__ import annotations

from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def safe_url(url: object) -> str:
    """`url` (a string, or an object whose str is one) as `scheme://host[:port]/path`:
    without credentials, query string or fragment (where keys travel), and without
    the scheme's default port; "(invalid URL)" for one that cannot be read. Light on
    purpose (no HTTP client imported): readiness messages use it."""
    try:
        parts = urlsplit(str(url))
        port = parts.port
    except ValueError:
        return "(invalid URL)"
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    shown_port = f":{port}" if port is not None and port != _DEFAULT_PORTS.get(scheme) else ""
    return f"{scheme}://{host}{shown_port}{parts.path or '/'}"
