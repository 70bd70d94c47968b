"""The address guard on its own: which addresses are refused, trusted hosts, URL checks and the
guarded resolver. Nothing here opens a connection; resolvers are fakes."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from bot.novita.download_guard import (
    BlockedAddressError,
    DownloadGuard,
    GuardedResolver,
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


@pytest.mark.parametrize("address", [PUBLIC_V4, "8.8.8.8", PUBLIC_V6, "::ffff:93.184.215.14"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert not is_forbidden(ipaddress.ip_address(address))





@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/x.jpeg",
        "http://[::1]/x.jpeg",
        "http://10.1.2.3/x.jpeg",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/x.jpeg",
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
     [PUBLIC_V4, "192.168.0.7"]],  # one bad answer among good ones refuses the name
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
