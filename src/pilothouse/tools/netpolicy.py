"""Which network destinations a tool may reach.

A destination is refused when any address its host resolves to is not public:
private (RFC 1918, unique-local), loopback, link-local, CGNAT (100.64/10),
multicast, reserved, unspecified (0.0.0.0, ::), documentation and benchmarking
ranges, and the cloud metadata endpoints. IPv6 forms that embed an IPv4 address
(IPv4-mapped, IPv4-compatible, 6to4, NAT64) are judged by the embedded address.

Host spellings that libc reads as IPv4 (decimal `2130706433`, octal `0177.0.0.1`,
hex `0x7f.1`, short `127.1`) are read as addresses here too, never sent to DNS.

An allow-list (per tool source, in the copilot's configuration) opens exactly the
on-premise destinations a copilot needs: networks (`10.20.0.0/16`), single
addresses with or without a port (`127.0.0.1:8080`), or host names
(`jira.corp.example`, `*.corp.example`). Metadata addresses stay refused unless
an entry names that very address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from pilothouse.tools.errors import BlockedAddressError, ToolConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolve (host, port) to a list of IP address strings."""

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.123",  # AWS time sync
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS DNS over IPv6
    )
)
METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "metadata.azure.com"}
)

# Ranges refused on top of what `ipaddress` calls non-global (kept explicit so the
# verdict does not depend on the Python version's registry tables).
_BLOCKED_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "::/128",
        "::1/128",
        "::/96",
        "::ffff:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address `host` denotes when it is an IP literal in any spelling libc
    accepts (bracketed IPv6, zone ids dropped), else None."""
    text = host.strip().rstrip(".")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if "%" in text:  # IPv6 zone id: fe80::1%eth0
        text = text.split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if ":" in text or not text:
        return None
    try:  # decimal, octal, hex and short forms: what inet_aton (and so curl) accepts
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden inside an IPv6 address, if it has one."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    packed = address.packed
    if address in _NAT64:
        return ipaddress.IPv4Address(packed[12:])
    # IPv4-compatible (::a.b.c.d), but not :: and ::1, which are IPv6's own unspecified
    # and loopback addresses (and are reported as such)
    if packed[:12] == bytes(12) and int(address) > 1:
        return ipaddress.IPv4Address(packed[12:])
    return None


def is_public(address: IPAddress) -> bool:
    """True when `address` is an ordinary public unicast address."""
    inner = embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return False
    if address in METADATA_ADDRESSES:
        return False
    if any(address in net for net in _BLOCKED_NETWORKS if net.version == address.version):
        return False
    return bool(address.is_global) and not (
        address.is_multicast or address.is_reserved or address.is_unspecified
    )


@dataclass(frozen=True, slots=True)
class _HostRule:
    pattern: str  # lower-case name, or "*.suffix"
    port: int | None

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.pattern.startswith("*."):
            return host.endswith(self.pattern[1:])
        return host == self.pattern


@dataclass(frozen=True, slots=True)
class _NetRule:
    network: IPNetwork
    port: int | None

    def matches(self, address: IPAddress, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        return address.version == self.network.version and address in self.network


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """Where outbound requests may go. The default allows public addresses only."""

    allow: tuple[str, ...] = ()
    schemes: frozenset[str] = frozenset({"http", "https"})
    _hosts: tuple[_HostRule, ...] = field(default=(), init=False, repr=False, compare=False)
    _nets: tuple[_NetRule, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        hosts: list[_HostRule] = []
        nets: list[_NetRule] = []
        for entry in self.allow:
            rule = _parse_rule(entry)
            (hosts if isinstance(rule, _HostRule) else nets).append(rule)  # type: ignore[arg-type]
        object.__setattr__(self, "_hosts", tuple(hosts))
        object.__setattr__(self, "_nets", tuple(nets))

    def merged(self, extra: Iterable[str]) -> NetworkPolicy:
        return NetworkPolicy(allow=(*self.allow, *extra), schemes=self.schemes)

    def host_allowed(self, host: str, port: int) -> bool:
        """True when the host name itself is on the allow-list (any address)."""
        name = host.lower().rstrip(".")
        return any(rule.matches(name, port) for rule in self._hosts)

    def address_allowed(self, address: IPAddress, port: int) -> bool:
        if address in METADATA_ADDRESSES:  # only an exact entry opens a metadata address
            return any(
                r.network.num_addresses == 1 and address in r.network and r.port in (None, port)
                for r in self._nets
            )
        return is_public(address) or any(rule.matches(address, port) for rule in self._nets)

    def check_name(self, host: str, port: int) -> None:
        """Refuse before any lookup: empty hosts and metadata names."""
        name = host.lower().rstrip(".")
        if not name:
            raise BlockedAddressError("refused: the URL has no host")
        if name in METADATA_HOSTS and not self.host_allowed(name, port):
            raise BlockedAddressError(
                f"refused: {name} is a cloud metadata endpoint; tools may not reach it"
            )

    def check_addresses(self, host: str, port: int, addresses: list[IPAddress]) -> None:
        """Refuse unless every address `host` resolved to is allowed."""
        if not addresses:
            raise BlockedAddressError(f"refused: {host} did not resolve to any address")
        named = self.host_allowed(host, port)
        for address in addresses:
            if named and address not in METADATA_ADDRESSES:
                continue
            if not self.address_allowed(address, port):
                shown = host if str(address) == host else f"{host} ({address})"
                raise BlockedAddressError(
                    f"refused: {shown}:{port} is a {describe(address)} address; tools may only "
                    "reach public addresses unless the copilot's tool configuration allows "
                    "this host or network (`allow_network`)"
                )


def describe(address: IPAddress) -> str:
    """A short word for why an address is not public."""
    inner = embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return f"{describe(inner)} (embedded in IPv6)"
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("shared (CGNAT)", address in ipaddress.ip_network("100.64.0.0/10")),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    )
    for word, hit in checks:
        if hit:
            return word
    return "non-public"


def _parse_rule(entry: str) -> _HostRule | _NetRule:
    text = entry.strip()
    if not text:
        raise ToolConfigError("allow_network: an entry is empty")
    try:
        return _NetRule(ipaddress.ip_network(text, strict=False), None)
    except ValueError:
        pass
    port: int | None = None
    host = text
    if text.startswith("["):  # [v6]:port
        close = text.find("]")
        host, rest = text[1:close], text[close + 1 :]
        if rest:
            port = _port(rest.lstrip(":"), entry)
    elif text.count(":") == 1:
        host, raw_port = text.split(":")
        port = _port(raw_port, entry)
    literal = parse_ip_literal(host)
    if literal is not None:
        return _NetRule(ipaddress.ip_network(literal), port)
    name = host.lower().rstrip(".")
    if not name or any(c in name for c in "/@ ") or "*" in name.lstrip("*"):
        raise ToolConfigError(
            f"allow_network: {entry!r} is not a network (10.0.0.0/8), address (10.0.0.5:8080) "
            "or host name (jira.corp.example, *.corp.example)"
        )
    return _HostRule(name, port)


def _port(raw: str, entry: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ToolConfigError(f"allow_network: {entry!r} has an invalid port")
    return int(raw)


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the operating system (getaddrinfo), off the event loop."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def static_resolver(table: Mapping[str, list[str]]) -> Resolver:
    """A resolver answering from a table (tests; split-horizon setups). Unknown names
    fail as DNS would."""

    async def resolve(host: str, port: int) -> list[str]:
        try:
            return list(table[host.lower().rstrip(".")])
        except KeyError:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} not found") from None

    return resolve


async def resolve_checked(
    host: str, port: int, policy: NetworkPolicy, resolver: Resolver
) -> list[IPAddress]:
    """The addresses to connect to for `host`, all checked against `policy`."""
    policy.check_name(host, port)
    literal = parse_ip_literal(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            raw = await resolver(host.rstrip("."), port)
        except (OSError, UnicodeError) as exc:
            raise BlockedAddressError(f"cannot resolve {host}: {exc}") from None
        addresses = []
        for item in raw:
            parsed = parse_ip_literal(item)
            if parsed is None:
                raise BlockedAddressError(f"{host} resolved to something that is not an address")
            addresses.append(parsed)
    policy.check_addresses(host, port, addresses)
    return addresses
