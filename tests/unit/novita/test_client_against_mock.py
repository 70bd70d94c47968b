"""`NovitaClient` against the mock Novita over real sockets: the happy path and every fault.

Client and mock share one `ManualClock` (`fake_time`, tests/unit/novita/conftest.py); the client's
`sleep` advances it instead of waiting, so retries, Retry-After and task progress are
deterministic and the file runs in about a second.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest
from PIL import Image

from bot.config import Secret
from bot.imaging import ImageSize
from bot.novita.client import NovitaClient
from bot.novita.errors import (
    AuthenticationError,
    BadRequestError,
    ImageTooLargeError,
    ImageUnavailableError,
    InsufficientBalanceError,
    NovitaError,
    PromptRefusedError,
    RateLimitedError,
    TaskNotFoundError,
    UpstreamUnavailableError,
)
from bot.novita.models import TaskResult, TaskStatus
from bot.novita.retry import RetryPolicy
from fakes.clock import ManualClock
from fakes.novita.server import Endpoint, Fault, MockNovita, MockNovitaConfig
from tests.unit.novita.conftest import MockNovitaFactory

pytestmark = pytest.mark.timeout(30)

KEY = "mock-key-9f3a"
SMALL = ImageSize(512, 512)
POLICY = RetryPolicy(attempts=4, base_delay=0.5, max_delay=4.0)


@pytest.fixture
async def mock(make_mock_novita: MockNovitaFactory) -> MockNovita:
    return await make_mock_novita(api_key=KEY, queue_probability=0.2, seed=5,
                                  oversized_image_bytes=400_000)


def make_client(mock: MockNovita, fake_time: ManualClock, key: str = KEY,
                **options: object) -> NovitaClient:
    return NovitaClient(Secret(key), mock.base_url, retry=POLICY, clock=fake_time,
                        sleep=fake_time.sleep, trusted_image_hosts=[loopback_host(mock)],
                        **options)  # type: ignore[arg-type]


def loopback_host(mock: MockNovita) -> str:
    """The mock serves images from 127.0.0.1, which only a trusted host may do."""
    return mock.base_url.removeprefix("http://")


@pytest.fixture
async def client(mock: MockNovita, fake_time: ManualClock) -> AsyncIterator[NovitaClient]:
    async with make_client(mock, fake_time) as novita:
        yield novita


async def wait_until_done(client: NovitaClient, fake_time: ManualClock, task_id: str,
                          interval: float = 1.0, limit: int = 200) -> TaskResult:
    for _ in range(limit):
        result = await client.get_task(task_id)
        if result.status.is_terminal:
            return result
        await fake_time.sleep(interval)
    raise AssertionError(f"task {task_id} did not finish")


def assert_key_hidden(error: NovitaError) -> None:
    assert KEY not in str(error) and KEY not in repr(error)


# --- the happy path ---------------------------------------------------------------------------


async def test_submit_poll_download(mock: MockNovita, client: NovitaClient,
                                    fake_time: ManualClock) -> None:
    size = ImageSize(768, 1152)
    task_id = await client.submit("a paper boat on a rainy street", size)
    record = mock.tasks[task_id]
    assert (record.prompt, record.size) == ("a paper boat on a rainy street", "768*1152")

    result = await wait_until_done(client, fake_time, task_id, interval=0.5)
    assert result.status is TaskStatus.SUCCEED and result.task_id == task_id
    assert record.detected_at is not None
    assert 0 <= record.detected_at - record.succeeded_at < 0.5 + 1e-9

    data = await client.download(result.images[0], task_id=task_id)
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.size) == ("JPEG", (768, 1152))
    assert record.downloads == 1
    assert (client.stats.submits, client.stats.downloads, client.stats.retries) == (1, 1, 0)
    assert client.stats.polls == record.polls == mock.stats.polls


async def test_many_jobs_in_parallel(mock: MockNovita, client: NovitaClient,
                                     fake_time: ManualClock) -> None:
    sizes = [ImageSize(512, 512), ImageSize(1024, 1024), ImageSize(1536, 1024)]
    ids = [await client.submit(f"job {i}", sizes[i % 3]) for i in range(12)]
    fake_time.advance(120)
    results = await asyncio.gather(*(client.get_task(task_id) for task_id in ids))
    assert [r.task_id for r in results] == ids
    assert all(r.status is TaskStatus.SUCCEED for r in results)


# --- permanent errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error_type", "reason"),
    [
        (Fault.BAD_KEY, AuthenticationError, "INVALID_API_KEY"),
        (Fault.BALANCE, InsufficientBalanceError, "BILLING_BALANCE_NOT_ENOUGH"),
        (Fault.ILLEGAL_PROMPT, PromptRefusedError, "ILLEGAL_PROMPT"),
    ],
)
async def test_permanent_submit_errors_are_not_retried(
    mock: MockNovita, client: NovitaClient, fault: Fault, error_type: type[NovitaError],
    reason: str,
) -> None:
    mock.faults.inject(fault, times=None)
    with pytest.raises(error_type) as caught:
        await client.submit("a dog", SMALL)
    assert caught.value.reason == reason
    assert not caught.value.retryable
    assert_key_hidden(caught.value)
    assert mock.stats.submits == 1 and mock.tasks == {}


@pytest.mark.parametrize(("key", "status"), [("wrong-key", 403), ("", 400)])
async def test_wrong_or_missing_key(mock: MockNovita, fake_time: ManualClock, key: str,
                                    status: int) -> None:
    async with make_client(mock, fake_time, key=key) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.submit("a dog", SMALL)
    assert caught.value.status == status
    assert "wrong-key" not in str(caught.value)


async def test_prompt_markers_reach_the_client_as_typed_errors(client: NovitaClient) -> None:
    with pytest.raises(InsufficientBalanceError):
        await client.submit("a cat [mock:balance]", SMALL)
    with pytest.raises(PromptRefusedError):
        await client.submit("a cat [mock:illegal-prompt]", SMALL)


async def test_bad_request_from_the_server(
    make_mock_novita: MockNovitaFactory, fake_time: ManualClock
) -> None:
    mock = await make_mock_novita(api_key=KEY, max_prompt_chars=5)
    async with make_client(mock, fake_time) as client:
        with pytest.raises(BadRequestError) as caught:
            await client.submit("far too long", SMALL)
    assert caught.value.reason == "INVALID_REQUEST_BODY"


# --- transient errors -------------------------------------------------------------------------


async def test_submit_rate_limit_honours_retry_after(mock: MockNovita, client: NovitaClient,
                                                     fake_time: ManualClock) -> None:
    mock.faults.inject(Fault.RATE_LIMIT, retry_after=3)
    task_id = await client.submit("a dog", SMALL)
    assert task_id in mock.tasks
    assert 3.0 in fake_time.sleeps
    assert mock.stats.submits == 2 and client.stats.retries == 1


async def test_submit_rate_limit_without_retry_after_backs_off(
    mock: MockNovita, client: NovitaClient, fake_time: ManualClock
) -> None:
    mock.faults.inject(Fault.RATE_LIMIT_NO_RETRY_AFTER, times=2)
    await client.submit("a dog", SMALL)
    assert mock.stats.submits == 3
    assert len([s for s in fake_time.sleeps if 0 <= s <= POLICY.max_delay]) >= 2


async def test_endless_rate_limit_gives_up_typed(mock: MockNovita, client: NovitaClient) -> None:
    mock.faults.inject(Fault.RATE_LIMIT, times=None, retry_after=1)
    with pytest.raises(RateLimitedError) as caught:
        await client.submit("a dog", SMALL)
    assert caught.value.retry_after == 1
    assert mock.stats.submits == POLICY.attempts


async def test_submit_server_error_is_not_repeated(mock: MockNovita,
                                                   client: NovitaClient) -> None:
    # A 500 on submit may still have created (and billed) a task: the client must not resubmit.
    mock.faults.inject(Fault.SERVER_ERROR)
    with pytest.raises(UpstreamUnavailableError) as caught:
        await client.submit("a dog", SMALL)
    assert (caught.value.status, caught.value.reason) == (500, "CREATE_TASK_FAILED")
    assert mock.stats.submits == 1


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.BAD_GATEWAY,
                                   Fault.SERVICE_UNAVAILABLE, Fault.RATE_LIMIT])
async def test_poll_errors_are_retried_through(mock: MockNovita, client: NovitaClient,
                                               fault: Fault) -> None:
    task_id = await client.submit("a dog", SMALL)
    mock.faults.inject(fault, on=Endpoint.POLL, times=POLICY.attempts - 1)
    result = await client.get_task(task_id)
    assert result.task_id == task_id
    assert mock.tasks[task_id].polls == POLICY.attempts
    assert client.stats.retries == POLICY.attempts - 1


@pytest.mark.parametrize(("fault", "status"), [(Fault.SERVER_ERROR, 500),
                                               (Fault.BAD_GATEWAY, 502)])
async def test_persistent_poll_errors_surface_typed(mock: MockNovita, client: NovitaClient,
                                                    fault: Fault, status: int) -> None:
    task_id = await client.submit("a dog", SMALL)
    mock.faults.inject(fault, on=Endpoint.POLL, times=None)
    with pytest.raises(UpstreamUnavailableError) as caught:
        await client.get_task(task_id)
    assert caught.value.status == status and caught.value.task_id == task_id
    assert "<html" not in str(caught.value)  # HTML bodies are reduced to text
    assert_key_hidden(caught.value)


async def test_poll_marker_errors_are_retried_through(mock: MockNovita, client: NovitaClient,
                                                      fake_time: ManualClock) -> None:
    task_id = await client.submit("a dog [mock:bad-gateway@poll*2]", SMALL)
    result = await wait_until_done(client, fake_time, task_id)
    assert result.status is TaskStatus.SUCCEED
    assert mock.faults.served == {Fault.BAD_GATEWAY: 2}


async def test_task_not_found(mock: MockNovita, client: NovitaClient) -> None:
    task_id = await client.submit("a dog", SMALL)
    mock.faults.inject(Fault.TASK_NOT_FOUND, on=Endpoint.POLL)
    assert (await client.get_task(task_id)).task_id == task_id  # one 404 is forgiven
    with pytest.raises(TaskNotFoundError) as caught:
        await client.get_task("00000000-0000-4000-8000-000000000000")
    assert caught.value.status == 404


# --- task outcomes ----------------------------------------------------------------------------


async def test_failed_task(mock: MockNovita, client: NovitaClient, fake_time: ManualClock) -> None:
    mock.faults.inject(Fault.FAILED, reason="GPU fell over")
    task_id = await client.submit("a dog", SMALL)
    result = await wait_until_done(client, fake_time, task_id)
    assert result.status is TaskStatus.FAILED
    assert result.reason == "GPU fell over" and result.images == ()


async def test_unknown_status_keeps_polling(mock: MockNovita, client: NovitaClient,
                                            fake_time: ManualClock) -> None:
    task_id = await client.submit("a dog [mock:unknown-status]", SMALL)
    mock.tasks[task_id].processing_at = fake_time()  # skip any queue wait
    first = await client.get_task(task_id)
    assert first.status is TaskStatus.UNKNOWN and not first.status.is_terminal
    assert first.raw_status == "TASK_STATUS_UNKNOWN"
    assert (await wait_until_done(client, fake_time, task_id)).status is TaskStatus.SUCCEED


async def test_never_finishing_task_stays_in_progress(mock: MockNovita, client: NovitaClient,
                                                      fake_time: ManualClock) -> None:
    task_id = await client.submit("a dog [mock:never-finish]", SMALL)
    fake_time.advance(3600)
    assert not (await client.get_task(task_id)).status.is_terminal


async def test_nsfw_result_is_flagged(mock: MockNovita, client: NovitaClient,
                                      fake_time: ManualClock) -> None:
    task_id = await client.submit("a dog [mock:nsfw]", SMALL)
    result = await wait_until_done(client, fake_time, task_id)
    assert result.nsfw_flagged
    assert result.images[0].nsfw is not None and result.images[0].nsfw.confidence == 0.97


# --- downloads --------------------------------------------------------------------------------


async def finished_image(client: NovitaClient, fake_time: ManualClock, prompt: str) -> TaskResult:
    task_id = await client.submit(prompt, SMALL)
    return await wait_until_done(client, fake_time, task_id)


async def test_expired_image_url(client: NovitaClient, fake_time: ManualClock) -> None:
    result = await finished_image(client, fake_time, "a dog [mock:expired-image]")
    with pytest.raises(ImageUnavailableError) as caught:
        await client.download(result.images[0], task_id=result.task_id)
    assert caught.value.status == 403 and not caught.value.retryable


@pytest.mark.parametrize("marker", ["oversized-image", "oversized-image-chunked"])
async def test_oversized_image_is_refused(mock: MockNovita, fake_time: ManualClock,
                                          marker: str) -> None:
    async with make_client(mock, fake_time, max_download_bytes=200_000) as client:
        result = await finished_image(client, fake_time, f"a dog [mock:{marker}]")
        with pytest.raises(ImageTooLargeError):
            await client.download(result.images[0], task_id=result.task_id)


async def test_download_gateway_error_is_retried(mock: MockNovita, client: NovitaClient,
                                                 fake_time: ManualClock) -> None:
    result = await finished_image(client, fake_time, "a dog")
    mock.faults.inject(Fault.SERVICE_UNAVAILABLE, on=Endpoint.DOWNLOAD, times=2)
    data = await client.download(result.images[0], task_id=result.task_id)
    assert data.startswith(b"\xff\xd8\xff")
    assert mock.tasks[result.task_id].downloads == 1
    assert mock.stats.downloads == 3


# --- real time --------------------------------------------------------------------------------


async def test_real_clock_with_tiny_durations() -> None:
    """No fake clock: a 50 ms task on time.monotonic, polled every 5 ms, finishes and downloads.
    (The exact state sequence is covered with the manual clock; this only proves real time.)"""
    config = MockNovitaConfig(api_key=KEY, time_scale=0.001, fixed_duration=50,
                              queue_probability=0)
    async with MockNovita(config) as mock, NovitaClient(
        Secret(KEY), mock.base_url, trusted_image_hosts=[loopback_host(mock)]
    ) as client:
        task_id = await client.submit("a dog", ImageSize(1024, 1024))
        statuses = []
        for _ in range(2000):
            result = await client.get_task(task_id)
            statuses.append(result.status)
            if result.status.is_terminal:
                break
            await asyncio.sleep(0.005)
        assert statuses[-1] is TaskStatus.SUCCEED
        record = mock.tasks[task_id]
        assert record.detected_at is not None and record.detected_at >= record.succeeded_at
        assert await client.download(result.images[0], task_id=task_id)
