"""Where result images may be fetched from: an address guard applied when a connection opens.

Novita hands us an `image_url`; a confused upstream, or a redirect from it, could point at the
bot's own network (127.0.0.1, 10.x, the cloud metadata service at 169.254.169.254, …). Downloads
therefore use their own aiohttp session whose resolver refuses such addresses at connect time, on
every hop and every fresh DNS answer, so a name that resolves to a public address once and to
127.0.0.1 the next time (DNS rebinding) is still caught. aiohttp skips the resolver for hosts that
look like IP literals, so `DownloadGuard.check_url` vets those (and the scheme) before each hop.
An IPv6 address that carries an IPv4 one (IPv4-mapped, NAT64, 6to4, Teredo, …) is judged as the
IPv4 it would reach, so `64:ff9b::127.0.0.1` is refused like 127.0.0.1.

`TRUSTED_IMAGE_HOSTS` (`host:port`, compared with the URL's own host and port) are exempt: the
local mock Novita and the tests serve images from 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Final

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from bot.config import bare_host, trusted_host_entry
from bot.novita.errors import ImageHostRefusedError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES: Final = frozenset({"http", "https"})


class BlockedAddressError(OSError):
    """Raised by the resolver (aiohttp wraps resolver `OSError`s in `ClientConnectorDNSError`,
    keeping this as `os_error`), before any connection to `address` is attempted."""

    def __init__(self, host: str, address: str) -> None:
        self.host = host
        self.address = address
        super().__init__(f"{host} resolves to {address}, which is not a public address")


# IPv6 forms that carry an IPv4 address in their low 32 bits, beside the IPv4-mapped
# ::ffff:0:0/96 that `ipaddress` decodes itself. Each is judged as the IPv4 it carries: a NAT64
# gateway, an SIIT translator or an old dual stack would deliver it to that IPv4 host.
_LOW_32_BIT_EMBEDDINGS: Final = (
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64 well-known prefix (RFC 6052)
    ipaddress.IPv6Network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT, RFC 2765)
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible (deprecated, RFC 4291); ::, ::1 included
)

# Refused beside what `is_global`, `is_reserved` and `is_multicast` refuse, checked after the
# embeddings above. Python 3.11's tables miss some (site-local, 3fff::/20) and changed others
# between patch releases (local-use NAT64, 2001::/23, 192.0.0.0/24): pinned here so the verdict
# does not depend on the patch version.
_REFUSED_V6: Final = (
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # NAT64 local use (RFC 8215): the operator's own
    # translator, with an IPv4 position it chooses, so it is never read as an IPv4
    ipaddress.IPv6Network("fec0::/10"),  # site-local (deprecated, RFC 3879)
    ipaddress.IPv6Network("2001::/23"),  # IETF protocol assignments: PCP/TURN anycast reach a
    # server on the bot's own network (Teredo, 2001::/32, is decoded before this applies)
    ipaddress.IPv6Network("3fff::/20"),  # documentation (RFC 9637)
)
_REFUSED_V4: Final = (
    ipaddress.IPv4Network("192.0.0.0/24"),  # IETF protocol assignments, PCP/TURN anycast too
)


def embedded_ipv4s(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address would deliver to (none for a native IPv6 address):
    IPv4-mapped, NAT64 (well-known prefix), IPv4-translated, IPv4-compatible, 6to4, and both
    the Teredo server and client."""
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    if address.teredo is not None:
        return address.teredo
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if any(address in network for network in _LOW_32_BIT_EMBEDDINGS):
        return (ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF),)
    return ()


def is_forbidden(address: IPAddress) -> bool:
    """True unless the address is a public unicast host.

    The base rule is `ipaddress`'s `is_global` (which excludes loopback, RFC 1918, link-local,
    CGNAT, unique-local, documentation, benchmarking, …), plus multicast, reserved space and
    `_REFUSED_V4` / `_REFUSED_V6`. An IPv6 address that embeds IPv4 (`embedded_ipv4s`) is judged
    as that IPv4 alone: refused exactly when the IPv4 would be, so a public IPv4 behind NAT64
    (an IPv6-only host with DNS64), 6to4 or Teredo is allowed although `is_global` calls Teredo
    non-global; a local-use NAT64 address is always refused.
    """
    if isinstance(address, ipaddress.IPv6Address) and (embedded := embedded_ipv4s(address)):
        return any(is_forbidden(ipv4) for ipv4 in embedded)
    refused_blocks = _REFUSED_V4 if isinstance(address, ipaddress.IPv4Address) else _REFUSED_V6
    return (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or any(address in network for network in refused_blocks)
    )


class DownloadGuard:
    """The checks shared by `check_url` (each hop) and `GuardedResolver` (each connection)."""

    def __init__(self, trusted_hosts: Iterable[str] = ()) -> None:
        # Entries as `bot.config.parse_trusted_hosts` returns them (TRUSTED_IMAGE_HOSTS).
        self.trusted = frozenset(trusted_hosts)

    def is_trusted(self, host: str, port: int | None) -> bool:
        return port is not None and trusted_host_entry(host, port) in self.trusted

    def check_url(self, url: URL, *, task_id: str | None = None) -> None:
        """Refuse a hop before it is requested: wrong scheme, no host, or a forbidden IP literal."""
        if url.scheme not in ALLOWED_SCHEMES:
            raise ImageHostRefusedError(
                f"image URL scheme {url.scheme or '(none)'!r} is not http(s)", task_id=task_id
            )
        host = url.raw_host
        if not host:
            raise ImageHostRefusedError("image URL has no host", task_id=task_id)
        if self.is_trusted(host, url.port) or not _looks_like_ip(host):
            return  # names are checked by `GuardedResolver` when the connection opens
        try:
            address = ipaddress.ip_address(bare_host(host))
        except ValueError:
            # e.g. "2130706433" or "127.1": aiohttp hands these to the OS, which reads them as
            # 127.0.0.1. No real image host is written that way.
            raise ImageHostRefusedError(
                f"image host {host!r} is an unusual numeric address", task_id=task_id
            ) from None
        if is_forbidden(address):
            raise ImageHostRefusedError(
                f"image host {host} is not a public address", task_id=task_id
            )


class GuardedResolver(AbstractResolver):
    """Resolves with `inner` (the system resolver by default) and refuses the whole answer if any
    address in it is not public, so aiohttp never opens a connection to it."""

    def __init__(self, guard: DownloadGuard, inner: AbstractResolver | None = None) -> None:
        self.guard = guard
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = DefaultResolver()  # needs the running loop, so created here
        answers = await self._inner.resolve(host, port, family)
        if self.guard.is_trusted(host, port):
            return answers
        for answer in answers:
            try:
                address = ipaddress.ip_address(answer["host"])
            except ValueError:
                raise BlockedAddressError(host, answer["host"]) from None
            if is_forbidden(address):
                raise BlockedAddressError(host, answer["host"])
        return answers

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def _looks_like_ip(host: str) -> bool:
    # The same test aiohttp uses to skip its resolver (aiohttp.helpers.is_ip_address).
    return ":" in host or host.replace(".", "").isdigit()

