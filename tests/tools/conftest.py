"""Shared pieces for the tool-layer tests: loopback servers and an explicit
loopback allow-list (the safe client refuses 127.0.0.1 unless a test says so)."""

from __future__ import annotations

from pilothouse.tools.netpolicy import NetworkPolicy


def loopback_policy(base_url: str) -> NetworkPolicy:
    """A policy that opens exactly the test server's address and port."""
    port = base_url.rsplit(":", 1)[1].split("/")[0]
    return NetworkPolicy(allow=(f"127.0.0.1:{port}",))


def port_of(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1].split("/")[0])
