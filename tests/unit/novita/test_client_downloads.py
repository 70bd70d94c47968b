"""`NovitaClient.download` against a misbehaving image host on 127.0.0.1.

Names such as `images.example` reach the loopback host through an injected resolver; every
address a test connects to is 127.0.0.1. Retries sleep on a fake clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.config import Secret
from bot.novita.client import MAX_IMAGE_REDIRECTS, NovitaClient
from bot.novita.errors import (
    ImageHostRefusedError,
    ImageHostTooSlowError,
    InvalidImageError,
    NovitaError,
    UpstreamUnavailableError,
)
from bot.novita.models import GeneratedImage
from bot.novita.retry import RetryPolicy
from fakes.clock import ManualClock
from fakes.image_host import FakeImageHost, good_jpeg, good_png
from tests.unit.novita.test_download_guard import PUBLIC_V4, ScriptedResolver

pytestmark = pytest.mark.timeout(30)

POLICY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.01, jitter=0.0)


@pytest.fixture
async def host() -> AsyncIterator[FakeImageHost]:
    async with FakeImageHost(byte_delay=0.005) as running:
        yield running


def image(url: str) -> GeneratedImage:
    return GeneratedImage(url=url, url_ttl_seconds=0, image_type="jpeg", nsfw=None)


def make_client(
    host: FakeImageHost, *, trusted: bool = True, **options: object
) -> NovitaClient:
    defaults: dict[str, object] = {
        "retry": POLICY,
        "sleep": ManualClock().sleep,
        "trusted_image_hosts": [host.host_port] if trusted else [],
    }
    defaults.update(options)
    return NovitaClient(Secret("k"), "http://novita.invalid", **defaults)  # type: ignore[arg-type]


async def download(client: NovitaClient, url: str) -> bytes:
    async with client:
        return await client.download(image(url), task_id="t-1")


# --- what still works ----------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "data"), [("good.jpeg", good_jpeg()), ("good.png", good_png())])
async def test_a_good_image_from_a_trusted_host_is_returned(
    host: FakeImageHost, path: str, data: bytes
) -> None:
    assert await download(make_client(host), host.url(path)) == data


async def test_up_to_three_redirects_are_followed(host: FakeImageHost) -> None:
    url = host.url(f"redirect/{MAX_IMAGE_REDIRECTS}/good.jpeg")
    assert await download(make_client(host), url) == good_jpeg()
    assert len(host.requests) == MAX_IMAGE_REDIRECTS + 1


async def test_a_public_name_is_fetched_through_the_guarded_resolver(host: FakeImageHost) -> None:
    # images.example is trusted by name and resolves to the loopback host.
    resolver = ScriptedResolver({"images.example": [["127.0.0.1"]]})
    client = make_client(host, trusted=False, resolver=resolver,
                         trusted_image_hosts=[f"images.example:{host.port}"])
    assert await download(client, host.url("good.jpeg", host="images.example")) == good_jpeg()
    assert resolver.lookups == ["images.example"]


# --- the address guard ---------------------------------------------------------------------------


async def test_an_image_url_on_127_0_0_1_is_refused_without_a_request(
    host: FakeImageHost,
) -> None:
    client = make_client(host, trusted=False)
    with pytest.raises(ImageHostRefusedError, match="not a public address") as info:
        await download(client, host.url("good.jpeg"))
    assert info.value.task_id == "t-1"
    assert host.requests == [] and client.stats.downloads == 1  # refused once, not retried


async def test_a_redirect_to_127_0_0_1_is_refused(host: FakeImageHost) -> None:
    async with FakeImageHost() as internal:  # "an internal service" on another port
        url = host.url(f"redirect-to?url={internal.url('good.jpeg')}")
        client = make_client(host)
        with pytest.raises(ImageHostRefusedError):
            await download(client, url)
        assert internal.requests == []
    assert len(host.requests) == 1 and client.stats.downloads == 1


async def test_a_redirect_to_a_name_that_resolves_to_loopback_is_refused(
    host: FakeImageHost,
) -> None:
    resolver = ScriptedResolver({"localhost": [["127.0.0.1"]]})
    url = host.url(f"redirect-to?url=http://localhost:{host.port}/good.jpeg")
    client = make_client(host, resolver=resolver)
    with pytest.raises(ImageHostRefusedError, match="localhost"):
        await download(client, url)
    assert resolver.lookups == ["localhost"]  # checked when connecting, after the redirect
    assert host.requests == [url.removeprefix(host.base_url)]


@pytest.mark.parametrize("target", ["ftp://images.example/x.jpeg", "file:///etc/passwd"])
async def test_a_redirect_to_another_scheme_is_refused_and_not_retried(
    host: FakeImageHost, target: str
) -> None:
    client = make_client(host)
    with pytest.raises(ImageHostRefusedError, match="scheme"):
        await download(client, host.url(f"redirect-to?url={target}"))
    assert len(host.requests) == 1


async def test_more_than_three_redirects_are_refused_and_not_retried(
    host: FakeImageHost,
) -> None:
    client = make_client(host)
    with pytest.raises(ImageHostRefusedError, match="redirected more than 3"):
        await download(client, host.url(f"redirect/{MAX_IMAGE_REDIRECTS + 1}/good.jpeg"))
    assert len(host.requests) == MAX_IMAGE_REDIRECTS + 1  # one attempt: no retries
    assert client.stats.downloads == 1


async def test_dns_rebinding_is_caught_when_the_connection_opens(host: FakeImageHost) -> None:
    """The first answer (public) is what a check-then-fetch guard would have approved; the
    connection resolves again, gets 127.0.0.1 and is refused before any byte is sent."""
    resolver = ScriptedResolver({"rebind.example": [[PUBLIC_V4], ["127.0.0.1"]]})
    first = await resolver.resolve("rebind.example", host.port)  # the look-up a pre-check makes
    assert [a["host"] for a in first] == [PUBLIC_V4]
    client = make_client(host, resolver=resolver)
    with pytest.raises(ImageHostRefusedError, match=r"rebind\.example"):
        await download(client, host.url("good.jpeg", host="rebind.example"))
    assert resolver.lookups == ["rebind.example", "rebind.example"]
    assert host.requests == []



@pytest.mark.parametrize(
    "embedded", ["64:ff9b::7f00:1", "64:ff9b:1::7f00:1", "::127.0.0.1", "::ffff:127.0.0.1"]
)
async def test_a_name_resolving_to_an_ipv6_form_of_127_0_0_1_is_refused_unfetched(
    host: FakeImageHost, embedded: str
) -> None:
    """NAT64 of 127.0.0.1 (well-known and local-use prefixes), IPv4-compatible and IPv4-mapped:
    on a network with a NAT64 gateway these reach the bot's own loopback services. The resolver
    refuses the answer, so no connection opens and the image host sees nothing."""
    resolver = ScriptedResolver({"nat64.example": [[embedded]]})
    client = make_client(host, resolver=resolver)
    with pytest.raises(ImageHostRefusedError, match=f"resolves to {embedded}, ") as info:
        await download(client, host.url("good.jpeg", host="nat64.example"))
    assert not info.value.retryable and client.stats.downloads == 1
    assert resolver.lookups == ["nat64.example"] and host.requests == []

# --- slow hosts ----------------------------------------------------------------------------------


async def test_a_host_sending_a_byte_at_a_time_is_dropped_early(host: FakeImageHost) -> None:
    # 1 byte every 5 ms is ~200 bytes/s, far under the 50 kB/s minimum.
    client = make_client(host, image_min_bytes_per_second=50_000, slow_download_grace=0.1)
    # The image is whole and valid: only dropping the trickle early can raise this.
    with pytest.raises(ImageHostTooSlowError, match="bytes/s minimum"):
        await download(client, host.url("slow.jpeg"))
    assert client.stats.downloads == 1  # a trickling host is not asked again


async def test_a_host_that_stops_sending_hits_the_read_timeout(host: FakeImageHost) -> None:
    client = make_client(host, image_read_timeout=0.2, retry=RetryPolicy(attempts=1))
    with pytest.raises(UpstreamUnavailableError, match="timed out"):
        await download(client, host.url("stall.jpeg"))


# --- bad bytes -----------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's own notice
@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("truncated.jpeg", "truncated"),
        ("not-an-image.jpeg", "not a JPEG/PNG/WEBP image"),
        ("bomb.png", "13000×13000"),
    ],
)
async def test_bad_image_bytes_are_a_typed_final_failure(
    host: FakeImageHost, path: str, says: str
) -> None:
    client = make_client(host)
    with pytest.raises(InvalidImageError, match=says) as info:
        await download(client, host.url(path))
    assert info.value.task_id == "t-1" and not info.value.retryable
    assert client.stats.downloads == 1


async def test_refusals_never_leak_the_api_key(host: FakeImageHost) -> None:
    client = NovitaClient(Secret("sk_live_TOPSECRET"), "http://novita.invalid", retry=POLICY,
                          sleep=ManualClock().sleep)
    with pytest.raises(NovitaError) as info:
        await download(client, host.url("redirect/1/good.jpeg"))
    assert "TOPSECRET" not in f"{info.value!s} {info.value!r}"

