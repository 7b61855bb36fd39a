"""Readiness that asks the server: a model on a server-backed provider (Ollama, vLLM,
llama.cpp server, LM Studio, any OpenAI-compatible base URL) is ready only when its
server answers, and serves that model.

`registry.readiness` answers from what is at hand (a key, the weights, a base URL);
`ReadinessProbe` adds, for server-backed models, one cheap request to the server's
model list (`GET {base_url}/models`, 2 s at most), remembered for a few seconds per
server so that `/readyz` polled by a load balancer, or a listing of ten models on one
server, costs one request. Cloud providers at their own URL are not probed: a key is
what they need, and a request per check would cost time and, for some, money.

    probe = ReadinessProbe(settings)
    states = await probe.check_many(["ollama:llama3.2", "openai:gpt-4.1-mini"])
    states["ollama:llama3.2"].detail
    # "no server answers at http://127.0.0.1:11434/v1 (connection refused): start it
    #  with `ollama serve`"
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pilothouse.config import Settings
from pilothouse.errors import PilothouseError
from pilothouse.models.providers import Endpoint, provider_entry, resolve_endpoint
from pilothouse.models.readiness import Readiness, readiness
from pilothouse.models.registry import split_model_id
from pilothouse.util.urls import safe_url

if TYPE_CHECKING:
    import httpx

PROBE_TTL_S = 10.0
"""How long a server's answer (or silence) is remembered."""
PROBE_TIMEOUT_S = 2.0

# How to start each known server, for the message when it does not answer.
START_HINTS = {
    "ollama": "start it with `ollama serve`",
    "vllm": "start it with `vllm serve MODEL`",
    "llamacpp": "start it with `llama-server -m model.gguf`",
    "lmstudio": "start the local server in LM Studio (Developer tab) or `lms server start`",
}
# How to get a model onto a server that answers but does not list it.
PULL_HINTS = {"ollama": "`ollama pull {name}`", "lmstudio": "`lms get {name}`"}


@dataclass(frozen=True, slots=True)
class _ServerAnswer:
    """What one server said: the ids it serves (None: it answered without a list;
    `any_name`: it serves one model under any name), or why it is not usable."""

    served: tuple[str, ...] | None = None
    any_name: bool = False
    problem: str | None = None


def is_server_backed(model_id: str, settings: Settings) -> bool:
    """True when the model's host is a server to ask: a self-hosted provider (no key
    required), or any OpenAI-protocol provider whose base URL was changed from its
    own (a proxy, a gateway, a server on another machine)."""
    provider, _ = split_model_id(model_id)
    entry = provider_entry(provider, settings)
    endpoint = resolve_endpoint(provider, settings)
    if endpoint.protocol != "openai" or endpoint.flavor != "standard" or not endpoint.base_url:
        return False
    return not entry.key_required or endpoint.base_url != entry.base_url.rstrip("/")


class ReadinessProbe:
    """Readiness of model ids, asking their servers; answers are cached per server for
    `ttl_s` seconds, and checks of one server at the same time share one request."""

    def __init__(
        self,
        settings: Settings,
        *,
        ttl_s: float = PROBE_TTL_S,
        timeout_s: float = PROBE_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._answers: dict[str, tuple[float, _ServerAnswer]] = {}
        self._asking: dict[str, asyncio.Task[_ServerAnswer]] = {}
        self.requests = 0
        """How many probe requests went out (for tests and logs)."""

    async def check(self, model_id: str) -> Readiness:
        """Whether `model_id` can answer now, with the reason when not. Never raises
        for a bad id or configuration: that is a reason too."""
        try:
            state = readiness(model_id, self.settings)
            if not state.ready or not is_server_backed(model_id, self.settings):
                return state
            provider, name = split_model_id(model_id)
            endpoint = resolve_endpoint(provider, self.settings)
        except PilothouseError as exc:
            return Readiness(False, str(exc))
        answer = await self._ask(endpoint)
        return _verdict(provider, name, endpoint, answer)

    async def check_many(self, model_ids: Iterable[str]) -> dict[str, Readiness]:
        """`check` for each id, concurrently; in the order given."""
        ids = list(dict.fromkeys(model_ids))
        states = await asyncio.gather(*(self.check(i) for i in ids))
        return dict(zip(ids, states, strict=True))

    def check_many_sync(self, model_ids: Iterable[str]) -> dict[str, Readiness]:
        """`check_many` for code without an event loop (the CLI)."""
        return asyncio.run(self.check_many(model_ids))

    async def _ask(self, endpoint: Endpoint) -> _ServerAnswer:
        key = endpoint.base_url
        cached = self._answers.get(key)
        if cached is not None and self._clock() - cached[0] < self.ttl_s:
            return cached[1]
        task = self._asking.get(key)
        if task is None:
            task = asyncio.ensure_future(self._request(endpoint))
            self._asking[key] = task
            task.add_done_callback(lambda _: self._asking.pop(key, None))
        answer = await asyncio.shield(task)
        self._answers[key] = (self._clock(), answer)
        return answer

    async def _request(self, endpoint: Endpoint) -> _ServerAnswer:
        self.requests += 1
        url = f"{endpoint.base_url}/models"
        # Most probes find no server (Ollama or vLLM not started): a refused connection
        # is known without the HTTP client, whose import and first request cost more
        # CPU than the rest of `pilothouse models`.
        refused = await _refused(url, self.timeout_s)
        if refused is not None:
            return refused
        import httpx

        headers = {**endpoint.headers, **endpoint.auth_headers()}
        # A plain-HTTP server (Ollama, vLLM on this machine) needs no TLS: without
        # `verify` the client skips loading the CA bundle (20-40 ms of CPU per probe,
        # most of what `pilothouse models` spent on its two local servers).
        tls = url.startswith("https:")
        try:
            async with httpx.AsyncClient(
                timeout=self.timeout_s, trust_env=False, verify=tls
            ) as client:
                response = await client.get(url, headers=headers)
        except httpx.TimeoutException:
            return _ServerAnswer(problem=f"no answer within {self.timeout_s:g} s")
        except httpx.HTTPError as exc:
            return _ServerAnswer(problem=_transport_reason(exc))
        if response.status_code in (401, 403):
            return _ServerAnswer(problem=f"it refused the key (HTTP {response.status_code})")
        if response.status_code in (404, 405):
            return _ServerAnswer()  # a server without a model list: it answered
        if response.status_code >= 400:
            return _ServerAnswer(problem=f"it answered HTTP {response.status_code}")
        return _listed(response)


def _listed(response: httpx.Response) -> _ServerAnswer:
    """The OpenAI model list (`{"data": [{"id", "owned_by"}]}`), as far as it is one."""
    try:
        data = response.json().get("data")
    except (ValueError, AttributeError):
        return _ServerAnswer()
    if not isinstance(data, list):
        return _ServerAnswer()
    items = [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
    # llama.cpp's server answers with its one model whatever name is asked for.
    any_name = any(m.get("owned_by") == "llamacpp" for m in items)
    return _ServerAnswer(served=tuple(m["id"] for m in items), any_name=any_name)


async def _refused(url: str, timeout_s: float) -> _ServerAnswer | None:
    """What the HTTP client would say when nothing accepts a connection at `url`'s
    address: refused, or no answer in time. None when something accepts it, or when
    the URL names a host (resolving it, and saying why a connection failed, is left
    to the client)."""
    parts = urlsplit(url)
    try:
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        ipaddress.ip_address(host or "")
    except ValueError:
        return None
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except ConnectionRefusedError:
        return _ServerAnswer(problem="connection refused")
    except TimeoutError:
        return _ServerAnswer(problem=f"no answer within {timeout_s:g} s")
    except OSError:
        return None
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


def _transport_reason(exc: httpx.HTTPError) -> str:
    """Why a request got no answer, from the error or one it was raised from."""
    import httpx

    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror) or "name or service not known" in str(seen):
            return "unknown host name"
        seen = seen.__cause__ or seen.__context__
    return "cannot connect" if isinstance(exc, httpx.ConnectError) else type(exc).__name__


def _verdict(provider: str, name: str, endpoint: Endpoint, answer: _ServerAnswer) -> Readiness:
    where = safe_url(endpoint.base_url)
    if answer.problem is not None:
        hint = START_HINTS.get(provider)
        if answer.problem.startswith(("connection refused", "cannot connect", "unknown host")):
            text = f"no server answers at {where} ({answer.problem})"
            return Readiness(False, f"{text}: {hint}" if hint else text)
        return Readiness(False, f"the server at {where} is not usable: {answer.problem}")
    served = answer.served
    if served is None or answer.any_name:
        return Readiness(True, f"server answers at {where}")
    if name in served or f"{name}:latest" in served:
        return Readiness(True, f"served at {where}")
    shown = ", ".join(served[:5]) + (", ..." if len(served) > 5 else "") if served else "nothing"
    text = f"the server at {where} does not serve {name!r} (it serves: {shown})"
    pull = PULL_HINTS.get(provider)
    return Readiness(False, f"{text}; {pull.format(name=name)}" if pull else text)
