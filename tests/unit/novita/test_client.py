"""NovitaClient against aioresponses: requests sent, replies parsed, errors typed, retries bounded.

Time is fake: the client sleeps through the manual clock `fake_time` (the folder's conftest.py),
which records each delay and returns at once, so retry/backoff tests check exact delays and
never really wait.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import aiohttp.web
import pytest
from aiohttp.client_reqrep import ConnectionKey
from aioresponses import aioresponses
from PIL import Image
from yarl import URL

from bot.config import Secret, Settings, SettingsError
from bot.imaging import ImageSize
from bot.novita.client import SUBMIT_PATH, TASK_RESULT_PATH, USER_AGENT, NovitaClient
from bot.novita.errors import (
    AuthenticationError,
    BadRequestError,
    ConnectionFailedError,
    ImageTooLargeError,
    ImageUnavailableError,
    InsufficientBalanceError,
    MalformedResponseError,
    NovitaError,
    PromptRefusedError,
    RateLimitedError,
    TaskNotFoundError,
    UpstreamUnavailableError,
)
from bot.novita.models import GeneratedImage, TaskStatus
from bot.novita.retry import RetryPolicy
from fakes.clock import ManualClock
from tests.unit.novita.conftest import WIRE_STATUSES

pytestmark = pytest.mark.timeout(30)

KEY = "sk_live_SECRET_4f9a8b7c6d5e"
BASE = "https://api.novita.test"
SUBMIT_URL = BASE + SUBMIT_PATH
TASK_ID = "8d1c3f7e-0000-4000-8000-000000000001"
POLL_URL = f"{BASE}{TASK_RESULT_PATH}?task_id={TASK_ID}"
IMAGE_URL = "https://d2p7pge43lyniu.cloudfront.test/output/abc.jpeg"

def _tiny_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()


JPEG = _tiny_jpeg()  # downloads are decoded before they are returned, so it must be real
# Backoff without jitter: 0.5, 1, 2 ... capped at 4.
POLICY = RetryPolicy(attempts=4, base_delay=0.5, max_delay=4.0, multiplier=2.0, jitter=0.0)


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


def client_on(
    fake_time: ManualClock, base_url: str = BASE, *, retry: RetryPolicy = POLICY, **options: Any
) -> NovitaClient:
    """A client that retries by `retry` and waits on the manual clock (`options` as
    `NovitaClient` takes them)."""
    return NovitaClient(
        Secret(KEY), base_url, retry=retry, clock=fake_time, sleep=fake_time.sleep, **options
    )


@pytest.fixture
async def client(fake_time: ManualClock) -> AsyncIterator[NovitaClient]:
    async with client_on(
        fake_time, BASE + "/", max_download_bytes=4096, max_submits_per_minute=0
    ) as c:
        yield c


def task_body(status: str = "TASK_STATUS_SUCCEED", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "extra": {"has_nsfw_contents": []},
        "task": {
            "task_id": TASK_ID, "task_type": "QWEN_IMAGE_TEXT_TO_IMAGE", "status": status,
            "reason": "", "eta": 0, "progress_percent": 0,
        },
        "images": [{
            "image_url": IMAGE_URL, "image_url_ttl": "0", "image_type": "jpeg",
            "nsfw_detection_result": None,
        }] if status == "TASK_STATUS_SUCCEED" else [],
        "videos": [],
        "audios": [],
    }
    body.update(overrides)
    return body


def error_body(code: int, reason: str, message: str = "something went wrong") -> dict[str, Any]:
    return {"code": code, "reason": reason, "message": message, "metadata": {}}


def calls(m: aioresponses, method: str, url: str) -> list[Any]:
    return list(m.requests.get((method, URL(url)), []))


def connector_error() -> aiohttp.ClientConnectorError:
    key = ConnectionKey("api.novita.test", 443, True, True, None, None, None)
    return aiohttp.ClientConnectorError(key, OSError(111, "Connection refused"))


IMAGE = GeneratedImage(url=IMAGE_URL, url_ttl_seconds=0, image_type="jpeg", nsfw=None)


# --- submit ------------------------------------------------------------------------------------


async def test_submit_sends_prompt_size_and_bearer_and_returns_task_id(
    client: NovitaClient, mocked: aioresponses
) -> None:
    mocked.post(SUBMIT_URL, payload={"task_id": TASK_ID})
    assert client._http is None  # created lazily
    task_id = await client.submit("a red fox", ImageSize(1024, 768))
    assert task_id == TASK_ID
    (call,) = calls(mocked, "POST", SUBMIT_URL)
    assert call.kwargs["json"] == {"prompt": "a red fox", "size": "1024*768"}
    assert call.kwargs["headers"]["Authorization"] == f"Bearer {KEY}"
    assert call.kwargs["headers"]["User-Agent"] == USER_AGENT
    assert client.stats.submits == 1
    assert client.stats.retries == 0


@pytest.mark.parametrize(
    "payload",
    [{}, {"task_id": ""}, {"task_id": 123}, {"task_id": None}, {"task_id": "has space"}],
)
async def test_submit_without_usable_task_id_is_malformed_and_not_retried(
    client: NovitaClient, mocked: aioresponses, payload: dict[str, Any]
) -> None:
    mocked.post(SUBMIT_URL, payload=payload, repeat=True)
    with pytest.raises(MalformedResponseError):
        await client.submit("p", ImageSize(512, 512))
    assert len(calls(mocked, "POST", SUBMIT_URL)) == 1


@pytest.mark.parametrize("body", ["", "not json", "[1, 2]", "<html>ok</html>"])
async def test_submit_non_json_2xx_is_malformed(
    client: NovitaClient, mocked: aioresponses, body: str
) -> None:
    mocked.post(SUBMIT_URL, body=body)
    with pytest.raises(MalformedResponseError):
        await client.submit("p", ImageSize(512, 512))


ERROR_TABLE = [
    (403, "INVALID_API_KEY", AuthenticationError),
    (400, "MISSING_API_KEY", AuthenticationError),
    (403, "API_NOT_ALLOWED", AuthenticationError),
    (400, "BILLING_BALANCE_NOT_ENOUGH", InsufficientBalanceError),
    (403, "NOT_ENOUGH_BALANCE", InsufficientBalanceError),
    (400, "ILLEGAL_PROMPT", PromptRefusedError),
    (400, "INVALID_REQUEST_BODY", BadRequestError),
    (404, "API_NOT_FOUND", BadRequestError),
    (401, "", AuthenticationError),
]


@pytest.mark.parametrize(("status", "reason", "expected"), ERROR_TABLE)
async def test_submit_permanent_errors_are_typed_and_not_retried(
    client: NovitaClient, mocked: aioresponses, status: int, reason: str,
    expected: type[NovitaError],
) -> None:
    mocked.post(SUBMIT_URL, status=status, payload=error_body(status, reason, "nope, sorry"),
                repeat=True)
    with pytest.raises(expected) as info:
        await client.submit("p", ImageSize(512, 512))
    exc = info.value
    assert type(exc) is expected
    assert exc.status == status
    assert exc.reason == (reason or None)
    assert "nope, sorry" in str(exc)
    assert not exc.retryable
    assert len(calls(mocked, "POST", SUBMIT_URL)) == 1


@pytest.mark.parametrize(
    ("status", "kwargs"),
    [
        (500, {"payload": error_body(500, "CREATE_TASK_FAILED")}),
        (502, {"body": "<html><body><h1>502 Bad Gateway</h1></body></html>",
               "content_type": "text/html"}),
        (503, {"body": ""}),
        (504, {"body": "upstream timeout", "content_type": "text/plain"}),
    ],
)
async def test_submit_is_not_retried_on_5xx(
    client: NovitaClient, mocked: aioresponses, status: int, kwargs: dict[str, Any]
) -> None:
    mocked.post(SUBMIT_URL, status=status, repeat=True, **kwargs)
    with pytest.raises(UpstreamUnavailableError) as info:
        await client.submit("p", ImageSize(512, 512))
    assert info.value.status == status
    assert len(calls(mocked, "POST", SUBMIT_URL)) == 1  # a retry could pay twice


async def test_submit_is_not_retried_on_timeout(
    client: NovitaClient, mocked: aioresponses
) -> None:
    mocked.post(SUBMIT_URL, timeout=True, repeat=True)
    with pytest.raises(UpstreamUnavailableError) as info:
        await client.submit("p", ImageSize(512, 512))
    assert not isinstance(info.value, ConnectionFailedError)
    assert len(calls(mocked, "POST", SUBMIT_URL)) == 1


async def test_submit_is_not_retried_when_server_disconnects(
    client: NovitaClient, mocked: aioresponses
) -> None:
    mocked.post(SUBMIT_URL, exception=aiohttp.ServerDisconnectedError(), repeat=True)
    with pytest.raises(UpstreamUnavailableError):
        await client.submit("p", ImageSize(512, 512))
    assert len(calls(mocked, "POST", SUBMIT_URL)) == 1


@pytest.mark.parametrize(
    "exc_factory", [connector_error, lambda: aiohttp.ConnectionTimeoutError("connect")]
)
async def test_submit_retries_when_the_connection_never_opened(
    client: NovitaClient, mocked: aioresponses, fake_time: ManualClock, exc_factory: Any
) -> None:
    mocked.post(SUBMIT_URL, exception=exc_factory())
    mocked.post(SUBMIT_URL, exception=exc_factory())
    mocked.post(SUBMIT_URL, payload={"task_id": TASK_ID})
    assert await client.submit("p", ImageSize(512, 512)) == TASK_ID
    assert fake_time.sleeps == [0.5, 1.0]
    assert client.stats.retries == 2
    assert client.stats.submits == 3


async def test_submit_connection_failure_exhausted_raises_connection_failed(
    client: NovitaClient, mocked: aioresponses
) -> None:
    mocked.post(SUBMIT_URL, exception=connector_error(), repeat=True)
    with pytest.raises(ConnectionFailedError) as info:
        await client.submit("p", ImageSize(512, 512))
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert len(calls(mocked, "POST", SUBMIT_URL)) == POLICY.attempts


async def test_submit_429_honours_retry_after_seconds(
    client: NovitaClient, mocked: aioresponses, fake_time: ManualClock
) -> None:
    mocked.post(SUBMIT_URL, status=429, payload=error_body(429, "RATE_LIMIT_EXCEEDED"),
                headers={"Retry-After": "7"})
    mocked.post(SUBMIT_URL, payload={"task_id": TASK_ID})
    assert await client.submit("p", ImageSize(512, 512)) == TASK_ID
    assert fake_time.sleeps == [7.0]
    assert client.stats.retries == 1


async def test_submit_429_without_retry_after_uses_backoff(
    client: NovitaClient, mocked: aioresponses, fake_time: ManualClock
) -> None:
    for _ in range(3):
        mocked.post(SUBMIT_URL, status=429, payload=error_body(429, "RATE_LIMIT_EXCEEDED"))
    mocked.post(SUBMIT_URL, payload={"task_id": TASK_ID})
    assert await client.submit("p", ImageSize(512, 512)) == TASK_ID
    assert fake_time.sleeps == [0.5, 1.0, 2.0]


async def test_submit_429_exhausted_raises_rate_limited(
    client: NovitaClient, mocked: aioresponses, fake_time: ManualClock
) -> None:
    mocked.post(SUBMIT_URL, status=429, payload=error_body(429, "RATE_LIMIT_EXCEEDED"),
                headers={"Retry-After": "3"}, repeat=True)
    with pytest.raises(RateLimitedError) as info:
        await client.submit("p", ImageSize(512, 512))
    assert info.value.retry_after == 3.0
    assert info.value.retryable
    assert len(calls(mocked, "POST", SUBMIT_URL)) == POLICY.attempts
    assert len(fake_time.sleeps) == POLICY.attempts - 1


async def test_retry_after_longer_than_policy_allows_gives_up_at_once(
    client: NovitaClient, mocked: aioresponses, fake_time: ManualClock
) -> None:
    mocked.post(SUBMIT_URL, status=429, body="", headers={"Retry-After": "3600"}, repeat=True)
    with pytest.raises(RateLimitedError) as info:
        await client.submit("p", ImageSize(512, 512))
    assert info.value.retry_after == 3600.0
    assert fake_time.sleeps == []


async def test_429_makes_every_submitter_hold_off(
    fake_time: ManualClock, mocked: aioresponses
) -> None:
    async with client_on(fake_time, max_submits_per_minute=100) as client:
        mocked.post(SUBMIT_URL, status=429, body="", headers={"Retry-After": "5"})
        mocked.post(SUBMIT_URL, payload={"task_id": TASK_ID}, repeat=True)
        assert await client.submit("p", ImageSize(512, 512)) == TASK_ID
        assert fake_time.sleeps == [5.0]
        # The pause ended exactly when the retry went out, so nobody waits any longer.
        await client.submit("q", ImageSize(512, 512))
        assert fake_time.sleeps == [5.0]


async def test_submit_waits_in_the_local_rate_limiter(
    fake_time: ManualClock, mocked: aioresponses
) -> None:
    async with client_on(fake_time, max_submits_per_minute=2) as client:
        mocked.post(SUBMIT_URL, payload={"task_id": TASK_ID}, repeat=True)
        for _ in range(3):
            await client.submit("p", ImageSize(512, 512))
        assert fake_time.sleeps == [60.0]
        assert client.stats.submit_wait_seconds == pytest.approx(60.0)
        assert client.stats.submits == 3


# --- get_task ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("wire", "status", "terminal"), WIRE_STATUSES)
async def test_get_task_parses_every_status(
    client: NovitaClient, mocked: aioresponses, wire: str, status: TaskStatus, terminal: bool
) -> None:
    mocked.get(POLL_URL, payload=task_body(wire))
    result = await client.get_task(TASK_ID)
    assert result.status is status
    assert result.raw_status == wire
    assert result.status.is_terminal is terminal
    assert result.task_id == TASK_ID
    (call,) = calls(mocked, "GET", POLL_URL)
    assert call.kwargs["headers"]["Authorization"] == f"Bearer {KEY}"
    assert client.stats.polls == 1


async def test_get_task_success_carries_image_and_failed_carries_reason(
    client: NovitaClient, mocked: aioresponses
) -> None:
    mocked.get(POLL_URL, payload=task_body())
    done = await client.get_task(TASK_ID)
    assert [i.url for i in done.images] == [IMAGE_URL]
    assert done.images[0].url_ttl_seconds == 0
    assert not done.nsfw_flagged

    failed = task_body("TASK_STATUS_FAILED")
    failed["task"]["reason"] = "worker crashed"
    mocked.get(POLL_URL, payload=failed)
    result = await client.get_task(TASK_ID)
    assert result.reason == "worker crashed"
    assert result.images == ()


async def test_get_task_tolerates_extra_fields_and_reads_nsfw(
    client: NovitaClient, mocked: aioresponses
) -> None:
    body = task_body(
        extra={"has_nsfw_contents": [True], "debug_info": {"submit_time_ms": "1"}, "new": 1},
        brand_new_top_level={"x": [1, 2]},
    )
    body["task"]["new_field"] = "whatever"
    body["images"][0]["image_url_ttl"] = 3600
    body["images"][0]["nsfw_detection_result"] = {"valid": True, "confidence": 0.97}
    body["images"][0]["surprise"] = None
    mocked.get(POLL_URL, payload=body)
    result = await client.get_task(TASK_ID)
    assert result.nsfw_flagged
    assert result.images[0].url_ttl_seconds == 3600
    nsfw = result.images[0].nsfw
    assert nsfw is not None and nsfw.confidence == pytest.approx(0.97)


@pytest.mark.parametrize(
    ("status", "kwargs"),
    [
        (500, {"payload": error_body(500, "GET_RESULT_FAILED")}),
        (502, {"body": "<html><head><title>502 Bad Gateway</title></head></html>",
               "content_type": "text/html"}),
        (503, {"body": ""}),
        (504, {"body": "gateway timeout", "content_type": "text/plain"}),
        (429, {"payload": error_body(429, "RATE_LIMIT_EXCEEDED")}),
    ],
)
async def test_get_task_retries_transient_statuses_then_succeeds(
    client: NovitaClient, mocked: aioresponses, fake_time: ManualClock, status: int,
    kwargs: dict[str, Any],
) -> None:
    mocked.get(POLL_URL, status=status, **kwargs)
    mocked.get(POLL_URL, status=status, **kwargs)
    mocked.get(POLL_URL, payload=task_body("TASK_STATUS_PROCESSING"))
    result = await client.get_task(TASK_ID)
    assert result.status is TaskStatus.PROCESSING
    assert fake_time.sleeps == [0.5, 1.0]
    assert client.stats.polls == 3
    assert client.stats.retries == 2


@pytest.mark.parametrize(
    "exc", [None, aiohttp.ServerDisconnectedError(), aiohttp.ClientPayloadError("cut")]
)
async def test_get_task_retries_network_failures(
    client: NovitaClient, mocked: aioresponses, exc: Exception | None
) -> None:
    mocked.get(POLL_URL, timeout=exc is None, exception=exc)
    mocked.get(POLL_URL, exception=connector_error())
    mocked.get(POLL_URL, payload=task_body("TASK_STATUS_QUEUED"))
    result = await client.get_task(TASK_ID)
    assert result.status is TaskStatus.QUEUED


async def test_get_task_exhausted_retries_raise_upstream_unavailable(
    client: NovitaClient, mocked: aioresponses, fake_time: ManualClock
) -> None:
    mocked.get(POLL_URL, status=503, body="", repeat=True)
    with pytest.raises(UpstreamUnavailableError) as info:
        await client.get_task(TASK_ID)
    assert info.value.status == 503
    assert info.value.task_id == TASK_ID
    assert len(calls(mocked, "GET", POLL_URL)) == POLICY.attempts
    assert fake_time.sleeps == [0.5, 1.0, 2.0]


async def test_get_task_honours_retry_after_http_date(
    client: NovitaClient, mocked: aioresponses, fake_time: ManualClock
) -> None:
    mocked.get(POLL_URL, status=429, body="",
               headers={"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"})  # in the past → 0
    mocked.get(POLL_URL, payload=task_body())
    await client.get_task(TASK_ID)
    assert fake_time.sleeps == [0.0]


@pytest.mark.parametrize(
    "body",
    [
        "",
        "{not json",
        "[]",
        '"a string"',
        '{"task": "not an object"}',
        '{"images": []}',
        '{"task": {"status": "TASK_STATUS_SUCCEED"}, "images": "nope"}',
        '{"task": {"status": "TASK_STATUS_SUCCEED"}, "images": [{"image_url": ""}]}',
    ],
)
async def test_get_task_malformed_bodies_are_typed_at_once(
    client: NovitaClient, mocked: aioresponses, body: str
) -> None:
    # Not retried inside the call: the engine polls again and counts unreadable replies.
    mocked.get(POLL_URL, body=body, repeat=True)
    with pytest.raises(MalformedResponseError) as info:
        await client.get_task(TASK_ID)
    assert info.value.task_id == TASK_ID
    assert len(calls(mocked, "GET", POLL_URL)) == 1


async def test_get_task_malformed_once_then_good_on_the_next_poll(
    client: NovitaClient, mocked: aioresponses
) -> None:
    mocked.get(POLL_URL, body="<html>oops</html>", content_type="text/html")
    mocked.get(POLL_URL, payload=task_body())
    with pytest.raises(MalformedResponseError):
        await client.get_task(TASK_ID)
    assert (await client.get_task(TASK_ID)).status is TaskStatus.SUCCEED


async def test_get_task_refuses_a_reply_for_another_task(
    client: NovitaClient, mocked: aioresponses
) -> None:
    body = task_body()
    body["task"]["task_id"] = "someone-elses-task"
    mocked.get(POLL_URL, payload=body, repeat=True)
    with pytest.raises(MalformedResponseError, match="another task"):
        await client.get_task(TASK_ID)


async def test_task_not_found_is_forgiven_once(
    client: NovitaClient, mocked: aioresponses
) -> None:
    mocked.get(POLL_URL, status=404, payload=error_body(404, "TASK_NOT_FOUND"))
    mocked.get(POLL_URL, payload=task_body("TASK_STATUS_QUEUED"))
    assert (await client.get_task(TASK_ID)).status is TaskStatus.QUEUED


async def test_task_not_found_twice_raises(client: NovitaClient, mocked: aioresponses) -> None:
    mocked.get(POLL_URL, status=404, payload=error_body(404, "TASK_NOT_FOUND", "no such task"),
                repeat=True)
    with pytest.raises(TaskNotFoundError) as info:
        await client.get_task(TASK_ID)
    assert info.value.status == 404
    assert info.value.reason == "TASK_NOT_FOUND"
    assert info.value.task_id == TASK_ID
    assert len(calls(mocked, "GET", POLL_URL)) == 2


@pytest.mark.parametrize(("status", "reason", "expected"), ERROR_TABLE)
async def test_get_task_permanent_errors_are_not_retried(
    client: NovitaClient, mocked: aioresponses, status: int, reason: str,
    expected: type[NovitaError],
) -> None:
    mocked.get(POLL_URL, status=status, payload=error_body(status, reason), repeat=True)
    with pytest.raises(expected):
        await client.get_task(TASK_ID)
    assert len(calls(mocked, "GET", POLL_URL)) == 1


# --- download ------------------------------------------------------------------------------------


async def test_download_returns_bytes_without_sending_the_key(
    client: NovitaClient, mocked: aioresponses
) -> None:
    mocked.get(IMAGE_URL, body=JPEG, content_type="image/jpeg",
               headers={"Content-Length": str(len(JPEG))})
    assert await client.download(IMAGE, task_id=TASK_ID) == JPEG
    (call,) = calls(mocked, "GET", IMAGE_URL)
    headers = {k.lower(): v for k, v in call.kwargs["headers"].items()}
    assert "authorization" not in headers
    assert KEY not in repr(call.kwargs)
    assert client.stats.downloads == 1


async def test_download_accepts_octet_stream_that_is_really_an_image(
    client: NovitaClient, mocked: aioresponses
) -> None:
    mocked.get(IMAGE_URL, body=JPEG, content_type="binary/octet-stream")
    assert await client.download(IMAGE) == JPEG


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/xml", b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>"),
        ("text/html", b"<html><body>Not here</body></html>"),
        ("application/json", b'{"message": "nope"}'),
        ("application/octet-stream", b"<Error><Code>NoSuchKey</Code></Error>"),
    ],
)
async def test_download_never_takes_an_error_page_for_an_image(
    client: NovitaClient, mocked: aioresponses, content_type: str, body: bytes
) -> None:
    mocked.get(IMAGE_URL, body=body, content_type=content_type, repeat=True)
    with pytest.raises(ImageUnavailableError) as info:
        await client.download(IMAGE, task_id=TASK_ID)
    assert not isinstance(info.value, ImageTooLargeError)
    assert info.value.task_id == TASK_ID
    assert len(calls(mocked, "GET", IMAGE_URL)) == 1


@pytest.mark.parametrize("status", [403, 404, 410])
async def test_download_expired_link_is_unavailable_and_not_retried(
    client: NovitaClient, mocked: aioresponses, status: int
) -> None:
    mocked.get(IMAGE_URL, status=status, content_type="application/xml",
               body="<Error><Code>AccessDenied</Code><Message>Request has expired</Message>"
                    "</Error>", repeat=True)
    with pytest.raises(ImageUnavailableError, match="expired") as info:
        await client.download(IMAGE)
    assert info.value.status == status
    assert len(calls(mocked, "GET", IMAGE_URL)) == 1


async def test_download_too_large_by_content_length(
    client: NovitaClient, mocked: aioresponses
) -> None:
    mocked.get(IMAGE_URL, body=JPEG, content_type="image/jpeg",
               headers={"Content-Length": str(10 * 1024 * 1024)})
    with pytest.raises(ImageTooLargeError):
        await client.download(IMAGE)


async def test_download_too_large_while_streaming(
    client: NovitaClient, mocked: aioresponses
) -> None:
    big = b"\xff\xd8\xff" + b"\x01" * (client.max_download_bytes + 10)
    mocked.get(IMAGE_URL, body=big, content_type="image/jpeg")  # no Content-Length: a liar
    with pytest.raises(ImageTooLargeError):
        await client.download(IMAGE)


async def test_download_exactly_at_the_cap_is_fine(
    client: NovitaClient, mocked: aioresponses
) -> None:
    exact = JPEG + b"\x00" * (client.max_download_bytes - len(JPEG))  # padding after the image
    mocked.get(IMAGE_URL, body=exact, content_type="image/jpeg")
    assert await client.download(IMAGE) == exact


async def test_download_empty_body_is_unavailable(
    client: NovitaClient, mocked: aioresponses
) -> None:
    mocked.get(IMAGE_URL, body=b"", content_type="image/jpeg")
    with pytest.raises(ImageUnavailableError, match="empty"):
        await client.download(IMAGE)


async def test_download_retries_5xx_and_network_errors(
    client: NovitaClient, mocked: aioresponses, fake_time: ManualClock
) -> None:
    mocked.get(IMAGE_URL, status=503, body="")
    mocked.get(IMAGE_URL, timeout=True)
    mocked.get(IMAGE_URL, exception=connector_error())
    mocked.get(IMAGE_URL, body=JPEG, content_type="image/jpeg")
    assert await client.download(IMAGE) == JPEG
    assert fake_time.sleeps == [0.5, 1.0, 2.0]
    assert client.stats.downloads == 4


async def test_download_5xx_exhausted(client: NovitaClient, mocked: aioresponses) -> None:
    mocked.get(IMAGE_URL, status=500, body="", repeat=True)
    with pytest.raises(UpstreamUnavailableError):
        await client.download(IMAGE)
    assert len(calls(mocked, "GET", IMAGE_URL)) == POLICY.attempts


@pytest.mark.parametrize("url", ["ftp://host/x.jpeg", "file:///etc/passwd", "not a url", ""])
async def test_download_refuses_non_http_urls(client: NovitaClient, url: str) -> None:
    image = GeneratedImage(url=url, url_ttl_seconds=0, image_type="jpeg", nsfw=None)
    with pytest.raises(ImageUnavailableError):
        await client.download(image)


# --- secrets, logging, lifecycle -----------------------------------------------------------------


async def test_key_never_appears_in_errors_reprs_or_logs(
    client: NovitaClient, mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f"Invalid key {KEY} (header was Authorization: Bearer {KEY})"
    mocked.post(SUBMIT_URL, status=403, payload=error_body(403, "INVALID_API_KEY", echo))
    mocked.get(POLL_URL, status=500, payload=error_body(500, "GET_RESULT_FAILED", echo),
               repeat=True)
    mocked.get(IMAGE_URL, exception=aiohttp.TooManyRedirects(
        aiohttp.RequestInfo(URL(IMAGE_URL), "GET", {"Authorization": f"Bearer {KEY}"},  # type: ignore[arg-type]
                            URL(IMAGE_URL)), ()), repeat=True)
    errors: list[NovitaError] = []
    for call in (
        client.submit("p", ImageSize(512, 512)),
        client.get_task(TASK_ID),
        client.download(IMAGE),
    ):
        with pytest.raises(NovitaError) as info:
            await call
        errors.append(info.value)
    assert isinstance(errors[0], AuthenticationError)
    assert "Invalid key [redacted]" in str(errors[0])
    for exc in errors:
        assert KEY not in str(exc)
        assert KEY not in repr(exc)
        assert exc.__cause__ is None
    assert "retry" in caplog.text  # the retries were logged...
    assert KEY not in caplog.text  # ...without the key
    assert KEY not in repr(client)
    assert KEY not in str(client)


async def test_retries_are_logged_at_debug_with_task_id_and_reason(
    client: NovitaClient, mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.novita")
    mocked.get(POLL_URL, status=500, payload=error_body(500, "GET_RESULT_FAILED"))
    mocked.get(POLL_URL, payload=task_body())
    await client.get_task(TASK_ID)
    (record,) = [r for r in caplog.records if r.name == "bot.novita"]
    assert record.levelno == logging.DEBUG
    assert TASK_ID in record.getMessage()
    assert "GET_RESULT_FAILED" in record.getMessage()


async def test_error_excerpt_is_short_and_single_line(
    client: NovitaClient, mocked: aioresponses
) -> None:
    html = "<html>\n<body>" + "gateway says no. " * 200 + "</body></html>"
    mocked.post(SUBMIT_URL, status=502, body=html, content_type="text/html")
    with pytest.raises(UpstreamUnavailableError) as info:
        await client.submit("p", ImageSize(512, 512))
    message = info.value.message
    assert "\n" not in message and "<" not in message
    assert len(message) < 260
    assert re.search(r"non-JSON HTML reply: gateway says no\.", message)


async def test_session_is_lazy_shared_and_closed(
    fake_time: ManualClock, mocked: aioresponses
) -> None:
    client = client_on(fake_time)
    await client.close()  # closing before any use is fine
    client = NovitaClient(Secret(KEY), BASE, retry=POLICY)
    async with client:
        assert client._http is None
        mocked.get(POLL_URL, payload=task_body(), repeat=True)
        await client.get_task(TASK_ID)
        session = client._http
        assert session is not None
        await client.get_task(TASK_ID)
        assert client._http is session  # one session, never one per request
        connector = session.connector
        assert connector is not None
        assert connector.limit >= 1000 or connector.limit == 0
        assert connector.limit_per_host >= 100 or connector.limit_per_host == 0
        assert session.timeout.total == 60.0
    assert session.closed
    assert client.closed
    await client.close()  # idempotent
    with pytest.raises(RuntimeError):
        await client.get_task(TASK_ID)


def test_from_settings_uses_the_configured_values() -> None:
    settings = Settings(novita_api_key=Secret(KEY), novita_base_url="http://127.0.0.1:8089",
                        request_timeout=12.5, max_download_mb=2, max_submits_per_minute=7)
    client = NovitaClient.from_settings(settings)
    assert client.base_url == "http://127.0.0.1:8089"
    assert client.request_timeout == 12.5
    assert client.max_download_bytes == 2 * 1024 * 1024
    assert client.submit_limiter.per_minute == 7


def test_from_settings_without_a_key_names_the_setting() -> None:
    with pytest.raises(SettingsError, match="NOVITA_API_KEY"):
        NovitaClient.from_settings(Settings())


# --- over a real loopback socket: what aioresponses cannot show -------------------------------


class LoopbackServer:
    """A tiny aiohttp.web app whose handlers a test sets; records every request's headers."""

    def __init__(self) -> None:
        self.app = aiohttp.web.Application()
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.release = asyncio.Event()
        self.runner: aiohttp.web.AppRunner | None = None
        self.base_url = ""

    async def hang(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        self.seen.append((request.path, dict(request.headers)))
        await self.release.wait()  # never answers within the client's timeout
        return aiohttp.web.json_response({})

    async def image(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        self.seen.append((request.path, dict(request.headers)))
        return aiohttp.web.Response(body=JPEG, content_type="image/jpeg")

    async def __aenter__(self) -> LoopbackServer:
        self.app.router.add_post(SUBMIT_PATH, self.hang)
        self.app.router.add_get(TASK_RESULT_PATH, self.hang)
        self.app.router.add_get("/img.jpeg", self.image)
        self.runner = aiohttp.web.AppRunner(self.app)
        await self.runner.setup()
        site = aiohttp.web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        assert self.runner is not None
        await self.runner.cleanup()


def loopback_client(base_url: str, fake_time: ManualClock) -> NovitaClient:
    return client_on(
        fake_time, base_url, retry=RetryPolicy(attempts=2, jitter=0.0), request_timeout=0.2,
        trusted_image_hosts=[base_url.removeprefix("http://")],
    )


async def test_real_timeouts_are_typed_and_submit_is_sent_once(fake_time: ManualClock) -> None:
    async with LoopbackServer() as server, loopback_client(server.base_url, fake_time) as client:
        with pytest.raises(UpstreamUnavailableError, match="timed out"):
            await client.submit("p", ImageSize(512, 512))
        with pytest.raises(UpstreamUnavailableError, match="timed out") as info:
            await client.get_task(TASK_ID)
        assert info.value.task_id == TASK_ID
    paths = [path for path, _ in server.seen]
    assert paths == [SUBMIT_PATH, TASK_RESULT_PATH, TASK_RESULT_PATH]


async def test_real_image_host_gets_user_agent_but_never_the_key(fake_time: ManualClock) -> None:
    async with LoopbackServer() as server, loopback_client(server.base_url, fake_time) as client:
        image = GeneratedImage(url=f"{server.base_url}/img.jpeg", url_ttl_seconds=0,
                               image_type="jpeg", nsfw=None)
        assert await client.download(image) == JPEG
    ((path, headers),) = server.seen
    assert path == "/img.jpeg"
    assert headers["User-Agent"] == USER_AGENT
    assert "Authorization" not in headers
    assert KEY not in repr(headers)


async def test_real_connection_refused_is_retried_for_submit(fake_time: ManualClock) -> None:
    with socket.socket() as probe:  # find a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with loopback_client(f"http://127.0.0.1:{port}", fake_time) as client:
        with pytest.raises(ConnectionFailedError):
            await client.submit("p", ImageSize(512, 512))
        assert client.stats.submits == 2  # refused before sending: safe to try again
        assert client.stats.retries == 1


async def test_a_huge_retry_after_does_not_freeze_other_submitters(
    client: NovitaClient, mocked: aioresponses, fake_time: ManualClock
) -> None:
    mocked.post(SUBMIT_URL, status=429, body="", headers={"Retry-After": "3600"})
    mocked.post(SUBMIT_URL, payload={"task_id": TASK_ID})
    with pytest.raises(RateLimitedError):
        await client.submit("p", ImageSize(512, 512))
    assert await client.submit("q", ImageSize(512, 512)) == TASK_ID
    assert fake_time.sleeps == [POLICY.max_retry_after]


async def test_novita_redirects_are_not_followed(
    client: NovitaClient, mocked: aioresponses
) -> None:
    mocked.post(SUBMIT_URL, status=302, body="", headers={"Location": "https://elsewhere.test/"})
    with pytest.raises(BadRequestError) as info:
        await client.submit("p", ImageSize(512, 512))
    assert info.value.status == 302
    (call,) = calls(mocked, "POST", SUBMIT_URL)
    assert call.kwargs["allow_redirects"] is False
