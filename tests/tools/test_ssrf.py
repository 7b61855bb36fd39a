"""The SSRF corpus: every payload is refused by the safe client, and the canary
server that most of them aim at is never reached."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from pilothouse.testing.loopback import serve_app
from pilothouse.tools.errors import BlockedAddressError
from pilothouse.tools.http import SafeHttpClient
from pilothouse.tools.netpolicy import NetworkPolicy, static_resolver, system_resolver
from tests.tools.conftest import port_of

STUB_DNS = {
    "localtest.me": ["127.0.0.1"],
    "internal.example": ["10.1.2.3"],
    "mixed.example": ["93.184.216.34", "127.0.0.1"],
    "metadata.attacker.example": ["169.254.169.254"],
    "v6only.example": ["::1"],
    "mapped.example": ["::ffff:10.0.0.1"],
    "cgnat.example": ["100.64.1.1"],
}


async def stub_then_system(host: str, port: int) -> list[str]:
    if host.lower().rstrip(".") in STUB_DNS:
        return await static_resolver(STUB_DNS)(host, port)
    return await system_resolver(host, port)


def direct_payloads(c: int) -> list[str]:
    """Payloads aimed straight at the canary on 127.0.0.1:c or at private ranges."""
    return [
        f"http://127.0.0.1:{c}/",
        f"http://localhost:{c}/",
        f"http://LOCALHOST:{c}/",
        f"http://localhost.:{c}/",
        f"http://2130706433:{c}/",  # decimal
        f"http://0x7f000001:{c}/",  # hex
        f"http://0x7f.0.0.1:{c}/",  # dotted hex
        f"http://017700000001:{c}/",  # octal
        f"http://0177.0.0.1:{c}/",  # dotted octal
        f"http://127.1:{c}/",  # short form
        f"http://127.0.1:{c}/",
        f"http://[::1]:{c}/",
        f"http://[0:0:0:0:0:0:0:1]:{c}/",
        f"http://[::ffff:127.0.0.1]:{c}/",  # IPv4-mapped
        f"http://[::ffff:7f00:1]:{c}/",  # IPv4-mapped, hex
        f"http://[0:0:0:0:0:ffff:127.0.0.1]:{c}/",  # uncompressed
        f"http://[::127.0.0.1]:{c}/",  # IPv4-compatible
        f"http://[64:ff9b::7f00:1]:{c}/",  # NAT64
        f"http://[2002:7f00:1::]:{c}/",  # 6to4
        f"http://0.0.0.0:{c}/",
        f"http://0:{c}/",
        f"http://[::]:{c}/",
        f"http://good.example@127.0.0.1:{c}/",  # userinfo trick
        f"http://127.0.0.1:{c}@good.example/",
        f"http://user:pass@localhost:{c}/",
        f"http://localtest.me:{c}/",  # a name that resolves to 127.0.0.1
        f"http://mixed.example:{c}/",  # one public and one loopback answer
        f"http://v6only.example:{c}/",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.GOOGLE.INTERNAL./computeMetadata/v1/",
        "http://100.100.100.200/latest/meta-data/",
        "http://169.254.170.2/v2/credentials",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://2852039166/",  # 169.254.169.254 in decimal
        "http://metadata.attacker.example/",
        "http://10.0.0.1/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",  # CGNAT
        "http://cgnat.example/",
        "http://internal.example/",
        "http://mapped.example/",
        "http://224.0.0.1/",  # multicast
        "http://240.0.0.1/",  # reserved
        "http://255.255.255.255/",
        "http://[fe80::1]/",  # link-local
        "http://[fc00::1]/",  # unique local
        "http://[ff02::1]/",  # multicast
        "http://198.18.0.1/",  # benchmarking
        "file:///etc/passwd",
        f"gopher://127.0.0.1:{c}/_GET",
        f"ftp://127.0.0.1:{c}/",
        f"dict://127.0.0.1:{c}/info",
    ]


def redirect_targets(c: int) -> list[str]:
    return [
        f"http://127.0.0.1:{c}/",
        f"http://localhost:{c}/",
        f"http://[::1]:{c}/",
        f"http://2130706433:{c}/",
        f"http://[::ffff:127.0.0.1]:{c}/",
        f"http://0.0.0.0:{c}/",
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/",
        "http://10.0.0.1/",
        "file:///etc/passwd",
        f"http://x@127.0.0.1:{c}/",
    ]


class Canary:
    """A loopback server that counts every request that reaches it."""

    def __init__(self) -> None:
        self.hits: list[str] = []

        async def anything(request: Request) -> Response:
            self.hits.append(str(request.url))
            return JSONResponse({"secret": "internal data"})

        self.app = Starlette(
            routes=[Route("/{path:path}", anything, methods=["GET", "POST", "PUT"])]
        )


def redirector_app() -> Starlette:
    async def redirect(request: Request) -> Response:
        return RedirectResponse(request.query_params["to"], status_code=302)

    async def ok(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def hop(request: Request) -> Response:
        n = int(request.path_params["n"])
        return RedirectResponse(f"/hop/{n + 1}", status_code=307)

    return Starlette(
        routes=[Route("/redirect", redirect), Route("/ok", ok), Route("/hop/{n}", hop)]
    )


def test_the_corpus_is_big_enough() -> None:
    assert len(direct_payloads(1)) + len(redirect_targets(1)) >= 30


async def test_every_direct_payload_is_refused_and_the_canary_is_never_hit() -> None:
    canary = Canary()
    with serve_app(canary.app) as canary_url:
        c = port_of(canary_url)
        payloads = direct_payloads(c)
        async with SafeHttpClient(resolver=stub_then_system) as client:
            refused: list[str] = []
            for url in payloads:
                with pytest.raises(BlockedAddressError) as info:
                    await client.request("GET", url)
                assert "refused" in str(info.value) or "cannot resolve" in str(info.value)
                refused.append(url)
        # sanity: the canary is alive and reachable when explicitly allowed
        async with SafeHttpClient(NetworkPolicy(allow=(f"127.0.0.1:{c}",))) as allowed:
            ok = await allowed.request("GET", f"{canary_url}/alive")
            assert ok.status == 200
    assert len(refused) == len(payloads)
    assert canary.hits == [f"{canary_url}/alive"]


async def test_redirects_to_private_addresses_from_an_allowed_server_are_refused() -> None:
    canary = Canary()
    with serve_app(canary.app) as canary_url, serve_app(redirector_app()) as server:
        c = port_of(canary_url)
        policy = NetworkPolicy(allow=(f"127.0.0.1:{port_of(server)}",))
        async with SafeHttpClient(policy, resolver=stub_then_system) as client:
            assert (await client.request("GET", f"{server}/ok")).json() == {"ok": True}
            for target in redirect_targets(c):
                with pytest.raises(BlockedAddressError):
                    await client.request("GET", f"{server}/redirect", params={"to": target})
    assert canary.hits == []


async def test_redirect_chains_are_limited() -> None:
    from pilothouse.tools.errors import HTTPLimitError
    from pilothouse.tools.http import HttpLimits

    with serve_app(redirector_app()) as server:
        policy = NetworkPolicy(allow=(f"127.0.0.1:{port_of(server)}",))
        async with SafeHttpClient(policy, limits=HttpLimits(max_redirects=3)) as client:
            with pytest.raises(HTTPLimitError, match="redirected more than 3 times"):
                await client.request("GET", f"{server}/hop/0")


async def test_the_checked_address_is_the_one_dialled_on_every_connection() -> None:
    """DNS rebinding: the first lookup says an allowed address, the next a forbidden one.
    The connection goes to the address that was checked; a new connection checks again."""
    canary = Canary()
    with serve_app(canary.app) as canary_url:
        c = port_of(canary_url)
        answers = [["127.0.0.1"], ["10.9.9.9"]]
        calls: list[str] = []

        async def rebinding(host: str, port: int) -> list[str]:
            calls.append(host)
            return answers[min(len(calls) - 1, 1)]

        policy = NetworkPolicy(allow=(f"127.0.0.1:{c}",))
        async with SafeHttpClient(policy, resolver=rebinding) as client:
            response = await client.request("GET", f"http://rebind.example:{c}/first")
            assert response.status == 200
        async with SafeHttpClient(policy, resolver=rebinding) as client:
            with pytest.raises(BlockedAddressError, match=r"10\.9\.9\.9"):
                await client.request("GET", f"http://rebind.example:{c}/second")
    assert calls == ["rebind.example", "rebind.example"]
    assert [h.split("/")[-1] for h in canary.hits] == ["first"]


def test_metadata_addresses_stay_closed_under_a_broad_allow_list() -> None:
    import ipaddress

    broad = NetworkPolicy(allow=("169.254.0.0/16", "fd00::/8", "100.64.0.0/10"))
    assert broad.address_allowed(ipaddress.ip_address("169.254.10.10"), 80)
    assert not broad.address_allowed(ipaddress.ip_address("169.254.169.254"), 80)
    assert not broad.address_allowed(ipaddress.ip_address("fd00:ec2::254"), 80)
    assert not broad.address_allowed(ipaddress.ip_address("100.100.100.200"), 80)
    exact = NetworkPolicy(allow=("169.254.169.254",))
    assert exact.address_allowed(ipaddress.ip_address("169.254.169.254"), 80)


@pytest.mark.parametrize(
    "entry",
    ["", "not a host", "10.0.0.1:99999", "http://x/", "a*b.example"],
)
def test_bad_allow_entries_are_config_errors(entry: str) -> None:
    from pilothouse.tools.errors import ToolConfigError

    with pytest.raises(ToolConfigError):
        NetworkPolicy(allow=(entry,))


def test_host_name_rules_match_names_and_ports() -> None:
    import ipaddress

    policy = NetworkPolicy(allow=("*.corp.example", "jira.internal:8443"))
    lo = [ipaddress.ip_address("10.1.1.1")]
    policy.check_addresses("wiki.corp.example", 443, lo)
    policy.check_addresses("jira.internal", 8443, lo)
    with pytest.raises(BlockedAddressError):
        policy.check_addresses("jira.internal", 443, lo)
    with pytest.raises(BlockedAddressError):
        policy.check_addresses("corp.example.evil", 443, lo)
    with pytest.raises(BlockedAddressError):  # a named host still cannot be a metadata address
        policy.check_addresses("wiki.corp.example", 80, [ipaddress.ip_address("169.254.169.254")])


async def test_public_addresses_pass_the_check() -> None:
    import ipaddress

    policy = NetworkPolicy()
    for addr in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"):
        policy.check_addresses("example.com", 443, [ipaddress.ip_address(addr)])


@pytest.mark.parametrize(
    ("address", "word"),
    [
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("127.0.0.1", "loopback"),
        ("::ffff:127.0.0.1", "loopback (embedded in IPv6)"),
        ("::ffff:10.1.2.3", "private (embedded in IPv6)"),
        ("fe80::1", "link-local"),
    ],
)
def test_refusals_name_the_right_reason(address: str, word: str) -> None:
    import ipaddress

    from pilothouse.tools.netpolicy import describe

    parsed = ipaddress.ip_address(address)
    assert describe(parsed) == word
    with pytest.raises(BlockedAddressError) as refused:
        NetworkPolicy().check_addresses(address, 443, [parsed])
    assert f"is a {word} address" in str(refused.value)
