"""The address check at connection time, shared by the two HTTP stacks tools use
(httpcore for `SafeHttpClient`, httpcore2 for the MCP SDK's httpx2).

`GuardedConnector` is the logic of an httpcore-style network backend that connects
only to addresses the `NetworkPolicy` allows: it resolves the host itself, checks
every address, and dials the checked address (so DNS rebinding between check and use
cannot slip through); unix sockets are refused. Each stack's backend class combines
it with that stack's `AsyncNetworkBackend` base and names its connect errors.
"""

from __future__ import annotations

import typing
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pilothouse.tools.errors import BlockedAddressError
from pilothouse.tools.netpolicy import NetworkPolicy, Resolver, resolve_checked

StreamT = TypeVar("StreamT")
StreamT_co = TypeVar("StreamT_co", covariant=True)


class InnerBackend(Protocol[StreamT_co]):
    """The part of an httpcore(2) network backend the guard dials through."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[Any] | None = None,
    ) -> StreamT_co: ...

    async def sleep(self, seconds: float) -> None: ...


class GuardedConnector(Generic[StreamT]):
    """Network-backend methods that connect only to addresses the policy allows.
    Subclasses set `connect_errors`: the inner backend's errors after which the next
    checked address is tried."""

    connect_errors: ClassVar[tuple[type[Exception], ...]] = ()

    def __init__(
        self, policy: NetworkPolicy, resolver: Resolver, inner: InnerBackend[StreamT]
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[Any] | None = None,
    ) -> StreamT:
        addresses = await resolve_checked(host, port, self._policy, self._resolver)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except self.connect_errors as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: typing.Iterable[Any] | None = None,
    ) -> StreamT:
        raise BlockedAddressError("refused: tools may not connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
