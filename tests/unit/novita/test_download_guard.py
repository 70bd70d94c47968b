"""The address guard on its own: which addresses are refused, trusted hosts, URL checks and the
guarded resolver. Nothing here opens a connection; resolvers are fakes."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from hypothesis import assume, given
from hypothesis import strategies as st
from yarl import URL

from bot.novita.download_guard import (
    BlockedAddressError,
    DownloadGuard,
    GuardedResolver,
    embedded_ipv4s,
    is_forbidden,
)
from bot.novita.errors import ImageHostRefusedError

# Public addresses appear only as resolver answers here; no test connects to them.
PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


def answer(host: str, address: str, port: int = 80) -> ResolveResult:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return {"hostname": host, "host": address, "port": port, "family": family, "proto": 0,
            "flags": 0}


class ScriptedResolver(AbstractResolver):
    """Answers each lookup of a name with the next address list in its script."""

    def __init__(self, script: dict[str, list[list[str]]]) -> None:
        self.script = script
        self.lookups: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups.append(host)
        answers = self.script[host]
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        return [answer(host, address, port) for address in addresses]

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.8.9.10", "::1",                       # loopback
        "10.0.0.5", "172.16.3.4", "192.168.1.1", "fd00::1",     # private
        "169.254.169.254", "fe80::1",                           # link-local (cloud metadata)
        "224.0.0.1", "239.255.255.250", "ff02::1",              # multicast
        "0.0.0.0", "::",                                        # unspecified
        "100.64.0.1",                                           # carrier-grade NAT
        "240.0.0.1", "255.255.255.255",                         # reserved, broadcast
        "::ffff:127.0.0.1", "::ffff:10.0.0.1",                  # IPv4-mapped
        "2002:7f00:1::",                                        # 6to4 wrapping 127.0.0.1
    ],
)
def test_non_public_addresses_are_forbidden(address: str) -> None:
    assert is_forbidden(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "fec0::1", "feff:ffff::1",                              # site-local (fec0::/10)
        "64:ff9b:1::1", "64:ff9b:1:ffff::5db8:d70e",            # NAT64 local use, even public
        "2001:1::1", "2001:1::2", "2001:2::1", "2001:1ff::1",   # IETF protocol assignments
        "2001:db8::1", "3fff::1", "3fff:fff::1",                # documentation
        "100::1", "100:0:0:1::1", "5f00::1", "4000::1", "::1:0:0:1",  # discard, reserved space
        "ff0e::1",                                              # global-scope multicast
        "192.0.0.8", "192.0.0.9", "192.0.0.10", "192.0.0.255",  # IETF protocol assignments
        "198.18.0.1", "192.0.2.1", "203.0.113.9",               # benchmarking, documentation
    ],
)
def test_other_non_global_ranges_are_forbidden(address: str) -> None:
    assert is_forbidden(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [PUBLIC_V4, "8.8.8.8", "1.1.1.1", PUBLIC_V6, "2a00:1450:4001:82a::200e",
     "2001:4860:4860::8888", "2620:4f:8000::1", "2001:200::1"],  # 2001:200:: is past 2001::/23
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert not is_forbidden(ipaddress.ip_address(address))


# The README's IPv4 list, exactly (224/4 is multicast; 240/4 holds the broadcast address).
REFUSED_V4 = [ipaddress.IPv4Network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
)]
ipv4_addresses = st.sampled_from([ipaddress.IPv4Network("0.0.0.0/0"), *(
    network.supernet(2) for network in REFUSED_V4 if network.prefixlen > 2
)]).flatmap(lambda net: st.integers(int(net[0]), int(net[-1])).map(ipaddress.IPv4Address))


@given(ipv4_addresses)
def test_ipv4_is_refused_exactly_in_the_listed_blocks(address: ipaddress.IPv4Address) -> None:
    assert is_forbidden(address) == any(address in network for network in REFUSED_V4)


# --- IPv6 forms that carry an IPv4 address ---------------------------------------------------

TEREDO_SERVER = ipaddress.IPv4Address("65.54.227.120")  # a public Teredo server
TEREDO_CLIENT = ipaddress.IPv4Address(PUBLIC_V4)
Embedding = Callable[[ipaddress.IPv4Address], ipaddress.IPv6Address]


def teredo(server: ipaddress.IPv4Address, client: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    # 2001:0::/32, server, flags and port, then the client address with every bit inverted
    return ipaddress.IPv6Address(
        0x2001_0000 << 96 | int(server) << 64 | 0x8000_63BF << 32 | int(client) ^ 0xFFFF_FFFF
    )


EMBEDDINGS: dict[str, Embedding] = {
    "ipv4-mapped ::ffff:0:0/96": lambda v4: ipaddress.IPv6Address(0xFFFF << 32 | int(v4)),
    "ipv4-translated ::ffff:0:0:0/96": lambda v4: ipaddress.IPv6Address(0xFFFF << 48 | int(v4)),
    "ipv4-compatible ::/96": lambda v4: ipaddress.IPv6Address(int(v4)),
    "nat64 64:ff9b::/96": lambda v4: ipaddress.IPv6Address(0x64_FF9B << 96 | int(v4)),
    "6to4 2002::/16": lambda v4: ipaddress.IPv6Address(0x2002 << 112 | int(v4) << 80 | 1),
    "teredo client 2001::/32": lambda v4: teredo(TEREDO_SERVER, v4),
    "teredo server 2001::/32": lambda v4: teredo(v4, TEREDO_CLIENT),
}

EMBEDDED_SAMPLES = {
    "private": "10.1.2.3", "private-192": "192.168.0.1", "loopback": "127.0.0.1",
    "link-local": "169.254.169.254", "cgnat": "100.64.0.1", "public": PUBLIC_V4,
}


@pytest.mark.parametrize("form", EMBEDDINGS)
@pytest.mark.parametrize("kind", EMBEDDED_SAMPLES)
def test_each_embedding_is_judged_as_the_ipv4_it_carries(form: str, kind: str) -> None:
    ipv4 = ipaddress.IPv4Address(EMBEDDED_SAMPLES[kind])
    address = EMBEDDINGS[form](ipv4)
    assert ipv4 in embedded_ipv4s(address)
    assert is_forbidden(address) == (kind != "public"), f"{address} ({form}, {kind})"


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("64:ff9b::127.0.0.1", True), ("64:ff9b::7f00:1", True), ("64:ff9b::10.0.0.1", True),
        ("64:ff9b::169.254.169.254", True), ("64:ff9b::100.64.0.1", True),
        ("64:ff9b::93.184.215.14", False),  # an IPv6-only host with DNS64 reaching a CDN
        ("64:ff9b:1::127.0.0.1", True), ("64:ff9b:1::93.184.215.14", True),  # local use
        ("::127.0.0.1", True), ("::10.0.0.1", True), ("::93.184.215.14", False),
        ("::ffff:127.0.0.1", True), ("::ffff:93.184.215.14", False),
        ("::ffff:0:127.0.0.1", True), ("::ffff:0:93.184.215.14", False),
        ("2002:7f00:1::1", True), ("2002:a9fe:a9fe::1", True), ("2002:5db8:d70e::1", False),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", True),  # Teredo client 192.0.2.45
    ],
)
def test_embedded_address_examples(address: str, forbidden: bool) -> None:
    assert is_forbidden(ipaddress.ip_address(address)) == forbidden


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_embedding_is_refused_exactly_when_its_ipv4_is(value: int) -> None:
    ipv4 = ipaddress.IPv4Address(value)
    for form, embed in EMBEDDINGS.items():
        assert is_forbidden(embed(ipv4)) == is_forbidden(ipv4), f"{embed(ipv4)} ({form})"


GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
REFUSED_IN_GLOBAL_UNICAST = [ipaddress.IPv6Network(n) for n in ("2001::/23", "2001:db8::/32",
                                                               "3fff::/20")]


# Addresses anywhere, and inside (or next to) each block the rule names.
_AROUND = ["::/0", "::/8", "2000::/3", "2001::/22", "2001:db8::/31", "3fff::/19", "3ff0::/12",
           "4000::/3", "5f00::/16", "fc00::/6", "fe80::/9", "ff00::/8", "2002::/15"]
ipv6_addresses = st.sampled_from([ipaddress.IPv6Network(n) for n in _AROUND]).flatmap(
    lambda net: st.integers(int(net[0]), int(net[-1])).map(ipaddress.IPv6Address)
)


@given(ipv6_addresses)
def test_native_ipv6_is_allowed_only_in_global_unicast_outside_the_refused_blocks(
    address: ipaddress.IPv6Address,
) -> None:
    """The README's list, exactly: outside 2000::/3 everything is refused; inside it, only
    2001::/23, 2001:db8::/32 and 3fff::/20 (the IPv4-carrying forms are judged above)."""
    assume(not embedded_ipv4s(address))
    refused_here = any(address in network for network in REFUSED_IN_GLOBAL_UNICAST)
    assert is_forbidden(address) == (address not in GLOBAL_UNICAST or refused_here)


@given(st.integers(min_value=0, max_value=2**80 - 1))
def test_local_use_nat64_is_refused_whatever_it_carries(low_bits: int) -> None:
    # 64:ff9b:1::/48: the operator picks where the IPv4 sits, and it only reaches its own network
    assert is_forbidden(ipaddress.IPv6Address(0x64_FF9B_0001 << 80 | low_bits))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/x.jpeg",
        "http://[::1]/x.jpeg",
        "http://10.1.2.3/x.jpeg",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/x.jpeg",
        "http://[64:ff9b::7f00:1]/x.jpeg",  # NAT64 of 127.0.0.1
        "http://[64:ff9b:1::a00:1]/x.jpeg",
        "http://[::127.0.0.1]/x.jpeg",
        "http://[fec0::1]/x.jpeg",
        "http://2130706433/x.jpeg",  # 127.0.0.1 as one number: the OS would accept it
        "http://127.1/x.jpeg",
        "ftp://images.example/x.jpeg",
        "file:///etc/passwd",
    ],
)
def test_check_url_refuses_before_any_request(url: str) -> None:
    with pytest.raises(ImageHostRefusedError) as info:
        DownloadGuard().check_url(URL(url), task_id="t-1")
    assert info.value.task_id == "t-1" and not info.value.retryable


@pytest.mark.parametrize("url", [f"http://{PUBLIC_V4}/x.jpeg", "https://cdn.example/x.jpeg",
                                 f"http://[64:ff9b::{PUBLIC_V4}]/x.jpeg",
                                 "http://localhost:9/x.jpeg"])  # names: left to the resolver
def test_check_url_lets_public_literals_and_names_through(url: str) -> None:
    DownloadGuard().check_url(URL(url))


def test_check_url_trusts_exactly_the_listed_host_and_port() -> None:
    guard = DownloadGuard(["127.0.0.1:8089", "[::1]:8090"])
    guard.check_url(URL("http://127.0.0.1:8089/images/a.jpeg"))
    guard.check_url(URL("http://[::1]:8090/a.jpeg"))
    for other in ("http://127.0.0.1:8090/a.jpeg", "http://127.0.0.1/a.jpeg",
                  "https://127.0.0.1/a.jpeg"):
        with pytest.raises(ImageHostRefusedError):
            guard.check_url(URL(other))


@pytest.mark.parametrize(
    "addresses",
    [["127.0.0.1"], ["10.0.0.5"], ["169.254.169.254"], ["224.0.0.251"], ["fe80::1"],
     ["64:ff9b::7f00:1"], ["64:ff9b:1::a9fe:a9fe"], ["::127.0.0.1"], ["fec0::1"],
     # one bad answer among good ones refuses the name
     [PUBLIC_V4, "192.168.0.7"], [PUBLIC_V6, "64:ff9b::a00:5"]],
)
async def test_resolver_refuses_names_that_resolve_to_non_public_addresses(
    addresses: list[str],
) -> None:
    inner = ScriptedResolver({"images.example": [addresses]})
    resolver = GuardedResolver(DownloadGuard(), inner)
    with pytest.raises(BlockedAddressError) as info:
        await resolver.resolve("images.example", 443)
    assert isinstance(info.value, OSError)  # so aiohttp wraps it instead of crashing
    assert info.value.host == "images.example"


async def test_resolver_passes_public_answers_through() -> None:
    inner = ScriptedResolver({"cdn.example": [[PUBLIC_V4, PUBLIC_V6]]})
    resolved = await GuardedResolver(DownloadGuard(), inner).resolve("cdn.example", 443)
    assert [r["host"] for r in resolved] == [PUBLIC_V4, PUBLIC_V6]


async def test_resolver_exempts_trusted_host_and_port_only() -> None:
    inner = ScriptedResolver({"fake-cdn.test": [["127.0.0.1"]]})
    resolver = GuardedResolver(DownloadGuard(["fake-cdn.test:8089"]), inner)
    assert [r["host"] for r in await resolver.resolve("fake-cdn.test", 8089)] == ["127.0.0.1"]
    with pytest.raises(BlockedAddressError):
        await resolver.resolve("fake-cdn.test", 8090)


async def test_every_lookup_is_checked_so_rebinding_is_caught() -> None:
    """A name that answers a public address first and 127.0.0.1 next is refused the second
    time: the check runs on each answer the connection will actually use, not once up front."""
    inner = ScriptedResolver({"rebind.example": [[PUBLIC_V4], ["127.0.0.1"]]})
    resolver = GuardedResolver(DownloadGuard(), inner)
    assert [r["host"] for r in await resolver.resolve("rebind.example", 80)] == [PUBLIC_V4]
    with pytest.raises(BlockedAddressError):
        await resolver.resolve("rebind.example", 80)
    assert inner.lookups == ["rebind.example", "rebind.example"]
