"""Readiness from what is at hand: whether a model id can answer now (a key for a cloud
model, the weights for the embedded one), without importing its protocol's adapter.

Each protocol's check is a plugin of the family `pilothouse.readiness`, under the
protocol's name (the built-ins are declared in pyproject.toml and live in light
modules), so `pilothouse models` and the server's `/readyz` never load an HTTP adapter
to learn that a key is missing. A protocol with no check declared there is asked
through its adapter (a static `readiness` on the class, which imports it), else the
default check below: a key when its host requires one, and a base URL.
`models.probe.ReadinessProbe` adds the question to a model server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol as TypingProtocol

from pilothouse.config import Settings
from pilothouse.models.providers import Endpoint, provider_entry, resolve_endpoint
from pilothouse.models.registry import PROTOCOLS, split_model_id
from pilothouse.plugins import Registry


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    detail: str


class ReadinessCheck(TypingProtocol):
    def __call__(self, name: str, endpoint: Endpoint, settings: Settings) -> Readiness: ...


def as_check(name: str, obj: object) -> ReadinessCheck:
    """An entry point's object as the readiness check of protocol `name`: a function
    `check(name, endpoint, settings) -> Readiness`."""
    if not callable(obj):
        raise TypeError(
            f"expected a function (name, endpoint, settings) -> Readiness, got {type(obj).__name__}"
        )
    return obj


READINESS: Registry[ReadinessCheck] = Registry("readiness", check=as_check, kind="readiness check")
"""Readiness checks by protocol name, from `pilothouse.readiness` entry points."""


def from_key(name: str, endpoint: Endpoint, settings: Settings) -> Readiness:
    """The default check: ready when the host has the key it requires and a base URL."""
    del name  # any model of the host: the key and the URL are the host's
    entry = provider_entry(endpoint.provider, settings)
    if entry.key_required and endpoint.api_key is None:
        return Readiness(False, f"no key: set {entry.key_env}")
    if not endpoint.base_url:
        return Readiness(False, "no base URL configured")
    return Readiness(True, "key present" if endpoint.api_key else "no key needed")


def readiness(model_id: str, settings: Settings) -> Readiness:
    """Whether `model_id` can answer now: a key for cloud models, weights for local."""
    provider, name = split_model_id(model_id)
    endpoint = resolve_endpoint(provider, settings)
    check = READINESS.find(endpoint.protocol)
    if check is None:  # a protocol that declares none: its adapter's, if it has one
        adapter = PROTOCOLS.get(endpoint.protocol)
        check = getattr(adapter, "readiness", None) or from_key
    return check(name, endpoint, settings)
