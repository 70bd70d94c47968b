"""The mock Novita over real loopback sockets with plain aiohttp: shapes, states, faults."""

from __future__ import annotations

import io
import json
import re
import signal
import statistics
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from bot.novita.models import TaskResult, TaskStatus
from fakes.novita.faults import parse_markers
from fakes.novita.server import (
    Endpoint,
    Fault,
    ManualClock,
    MockNovita,
    MockNovitaConfig,
)
from fakes.novita.tasks import TimingModel

pytestmark = pytest.mark.timeout(30)

KEY = "mock-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SUBMIT = "/v3/async/qwen-image-txt2img"
RESULT = "/v3/async/task-result"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ERROR_KEYS = {"code", "reason", "message", "metadata"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def config(clock: ManualClock) -> MockNovitaConfig:
    return MockNovitaConfig(clock=clock, queue_probability=0.0, seed=7,
                            oversized_image_bytes=300_000)


@pytest.fixture
async def mock(config: MockNovitaConfig) -> AsyncIterator[MockNovita]:
    async with MockNovita(config) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def submit(
    http: aiohttp.ClientSession, mock: MockNovita, prompt: str = "a red fox", size: str = "512*512"
) -> str:
    async with http.post(mock.base_url + SUBMIT, json={"prompt": prompt, "size": size},
                         headers=AUTH) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    assert set(body) == {"task_id"}
    return str(body["task_id"])


async def poll(http: aiohttp.ClientSession, mock: MockNovita, task_id: str) -> dict[str, Any]:
    async with http.get(mock.base_url + RESULT, params={"task_id": task_id}, headers=AUTH) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "application/json"
        body: dict[str, Any] = await resp.json()
    return body


async def error_of(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    assert resp.content_type == "application/json"
    body: dict[str, Any] = await resp.json()
    assert set(body) == ERROR_KEYS
    assert body["code"] == resp.status
    assert isinstance(body["metadata"], dict)
    return body


def finish(clock: ManualClock, mock: MockNovita, task_id: str) -> None:
    clock.advance(mock.tasks[task_id].succeeded_at - clock())


# --- submit -----------------------------------------------------------------------------------


async def test_submit_records_the_task(mock: MockNovita, http: aiohttp.ClientSession,
                                       clock: ManualClock) -> None:
    task_id = await submit(http, mock, "a lighthouse", "768*1024")
    assert UUID_RE.match(task_id)
    record = mock.tasks[task_id]
    assert (record.prompt, record.width, record.height, record.size) == (
        "a lighthouse", 768, 1024, "768*1024")
    assert record.created_at == clock() == record.processing_at  # no queue configured
    assert record.succeeded_at > record.processing_at
    assert mock.stats.submits == 1


async def test_size_defaults_to_1024_square(mock: MockNovita, http: aiohttp.ClientSession) -> None:
    async with http.post(mock.base_url + SUBMIT, json={"prompt": "x"}, headers=AUTH) as resp:
        task_id = (await resp.json())["task_id"]
    assert mock.tasks[task_id].size == "1024*1024"


@pytest.mark.parametrize(
    ("method", "path"), [("POST", SUBMIT), ("GET", RESULT + "?task_id=abc")]
)
@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({}, 400, "MISSING_API_KEY"),
        ({"Authorization": "Bearer wrong"}, 403, "INVALID_API_KEY"),
        ({"Authorization": f"Token {KEY}"}, 403, "INVALID_API_KEY"),
        ({"Authorization": "Bearer "}, 400, "MISSING_API_KEY"),
    ],
)
async def test_auth_is_checked_on_both_endpoints(
    mock: MockNovita, http: aiohttp.ClientSession, method: str, path: str,
    headers: dict[str, str], status: int, reason: str,
) -> None:
    async with http.request(method, mock.base_url + path, json={"prompt": "x"},
                            headers=headers) as resp:
        assert resp.status == status
        body = await error_of(resp)
    assert body["reason"] == reason
    assert KEY not in json.dumps(body) and "wrong" not in json.dumps(body)
    assert mock.tasks == {}


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b"[1, 2]",
        b'"just a string"',
        json.dumps({"size": "512*512"}).encode(),
        json.dumps({"prompt": ""}).encode(),
        json.dumps({"prompt": "   "}).encode(),
        json.dumps({"prompt": 42}).encode(),
        json.dumps({"prompt": "x", "size": "1024x1024"}).encode(),
        json.dumps({"prompt": "x", "size": 1024}).encode(),
        json.dumps({"prompt": "x", "size": "1024*"}).encode(),
        json.dumps({"prompt": "x", "size": " 512*512"}).encode(),
        json.dumps({"prompt": "x", "size": "255*512"}).encode(),
        json.dumps({"prompt": "x", "size": "512*1537"}).encode(),
        json.dumps({"prompt": "x", "size": "2048*2048"}).encode(),
    ],
)
async def test_invalid_bodies_get_novita_400(
    mock: MockNovita, http: aiohttp.ClientSession, payload: bytes
) -> None:
    async with http.post(mock.base_url + SUBMIT, data=payload,
                         headers={**AUTH, "Content-Type": "application/json"}) as resp:
        assert resp.status == 400
        body = await error_of(resp)
    assert body["reason"] == "INVALID_REQUEST_BODY"
    assert body["message"]
    assert mock.tasks == {}


@pytest.mark.parametrize("size", ["256*256", "1536*1536", "256*1536", "1000*777"])
async def test_edge_sizes_are_accepted(
    mock: MockNovita, http: aiohttp.ClientSession, size: str
) -> None:
    task_id = await submit(http, mock, size=size)
    assert mock.tasks[task_id].size == size


async def test_prompt_limit_only_when_configured(clock: ManualClock,
                                                 http: aiohttp.ClientSession) -> None:
    async with MockNovita(MockNovitaConfig(clock=clock, max_prompt_chars=10)) as mock:
        async with http.post(mock.base_url + SUBMIT, json={"prompt": "x" * 11},
                             headers=AUTH) as resp:
            assert resp.status == 400
            assert (await error_of(resp))["reason"] == "INVALID_REQUEST_BODY"
        await submit(http, mock, "x" * 10)


async def test_unknown_api_path_is_novita_404(mock: MockNovita,
                                              http: aiohttp.ClientSession) -> None:
    async with http.get(mock.base_url + "/v3/async/nope", headers=AUTH) as resp:
        assert resp.status == 404
        assert (await error_of(resp))["reason"] == "API_NOT_FOUND"


# --- task-result ------------------------------------------------------------------------------


async def test_unknown_and_missing_task_ids(mock: MockNovita,
                                            http: aiohttp.ClientSession) -> None:
    async with http.get(mock.base_url + RESULT, params={"task_id": "nope"}, headers=AUTH) as resp:
        assert resp.status == 404
        body = await error_of(resp)
    assert body["reason"] == "TASK_NOT_FOUND"
    assert body["metadata"] == {"task_id": "nope"}
    async with http.get(mock.base_url + RESULT, headers=AUTH) as resp:
        assert resp.status == 400
        assert (await error_of(resp))["reason"] == "INVALID_REQUEST_BODY"


async def test_states_follow_the_clock_exactly(clock: ManualClock,
                                               http: aiohttp.ClientSession) -> None:
    config = MockNovitaConfig(clock=clock, queue_probability=1.0, queue_wait_range=(3.0, 3.0),
                              fixed_duration=10.0, seed=1)
    async with MockNovita(config) as mock:
        task_id = await submit(http, mock)
        record = mock.tasks[task_id]
        assert record.processing_at == pytest.approx(clock() + 3.0)
        assert record.succeeded_at == pytest.approx(clock() + 13.0)

        seen = [(await poll(http, mock, task_id))["task"]["status"]]
        clock.advance(record.processing_at - clock())
        seen.append((await poll(http, mock, task_id))["task"]["status"])
        clock.now = record.succeeded_at - 1e-6
        seen.append((await poll(http, mock, task_id))["task"]["status"])
        assert record.detected_at is None
        clock.now = record.succeeded_at
        seen.append((await poll(http, mock, task_id))["task"]["status"])
        clock.advance(5)
        seen.append((await poll(http, mock, task_id))["task"]["status"])

    assert seen == ["TASK_STATUS_QUEUED", "TASK_STATUS_PROCESSING", "TASK_STATUS_PROCESSING",
                    "TASK_STATUS_SUCCEED", "TASK_STATUS_SUCCEED"]
    assert record.detected_at == record.succeeded_at  # first poll that saw SUCCEED
    assert record.polls == 5
    assert record.poll_times[0] == record.created_at


async def test_result_body_matches_the_qwen_example(
    mock: MockNovita, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    task_id = await submit(http, mock)
    pending = await poll(http, mock, task_id)
    assert pending["images"] == [] and pending["videos"] == [] and pending["audios"] == []
    finish(clock, mock, task_id)
    body = await poll(http, mock, task_id)
    assert set(body) == {"extra", "task", "images", "videos", "audios"}
    assert body["extra"] == {"has_nsfw_contents": []}
    assert body["task"] == {
        "task_id": task_id, "task_type": "QWEN_IMAGE_TEXT_TO_IMAGE",
        "status": "TASK_STATUS_SUCCEED", "reason": "", "eta": 0, "progress_percent": 0,
    }
    assert body["images"] == [{
        "image_url": f"{mock.base_url}/images/{task_id}.jpeg",
        "image_url_ttl": "0",
        "image_type": "jpeg",
        "nsfw_detection_result": None,
    }]
    assert body["videos"] == [] and body["audios"] == []
    # The bot's own parser accepts it.
    parsed = TaskResult.from_json(body)
    assert parsed.status is TaskStatus.SUCCEED and not parsed.nsfw_flagged
    assert parsed.images[0].url_ttl_seconds == 0


async def test_progress_is_reported_only_when_configured(
    clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    config = MockNovitaConfig(clock=clock, queue_probability=0, fixed_duration=10,
                              report_progress=True)
    async with MockNovita(config) as mock:
        task_id = await submit(http, mock)
        clock.advance(4)
        task = (await poll(http, mock, task_id))["task"]
        assert task["progress_percent"] == 40
        assert task["eta"] == pytest.approx(6)
        clock.advance(6)
        task = (await poll(http, mock, task_id))["task"]
        assert (task["progress_percent"], task["eta"]) == (100, 0)


# --- timing model -----------------------------------------------------------------------------


def test_mean_duration_follows_pixel_count() -> None:
    model = TimingModel()
    assert model.mean_seconds(512, 512) == pytest.approx(12)
    assert model.mean_seconds(1024, 1024) == pytest.approx(20)
    assert model.mean_seconds(1536, 1536) == pytest.approx(30)
    assert 12 < model.mean_seconds(768, 768) < 20
    assert 20 < model.mean_seconds(1536, 1024) < 30
    assert 5 < model.mean_seconds(256, 256) < 12  # extrapolated below the first anchor
    assert model.mean_seconds(1024, 1536) == model.mean_seconds(1536, 1024)


def test_time_scale_spread_and_seed() -> None:
    import random

    model = TimingModel(time_scale=0.05, queue_probability=0)
    runs = [model.plan(random.Random(seed), 1024, 1024)[1] for seed in range(400)]
    assert statistics.mean(runs) == pytest.approx(20 * 0.05, rel=0.03)
    assert statistics.stdev(runs) / statistics.mean(runs) == pytest.approx(0.15, rel=0.2)
    assert model.plan(random.Random(3), 512, 512) == model.plan(random.Random(3), 512, 512)
    fixed = TimingModel(time_scale=0.5, fixed_duration=4, queue_probability=0)
    assert fixed.plan(random.Random(1), 1536, 1536) == (0.0, 2.0)


def test_queue_waits_are_occasional() -> None:
    import random

    model = TimingModel(queue_probability=0.25, queue_wait_range=(2, 8))
    rng = random.Random(5)
    waits = [model.plan(rng, 512, 512)[0] for _ in range(1000)]
    queued = [w for w in waits if w > 0]
    assert 0.2 < len(queued) / len(waits) < 0.3
    assert all(2 <= w <= 8 for w in queued)


async def test_same_seed_same_plan(clock: ManualClock, http: aiohttp.ClientSession) -> None:
    plans = []
    for _ in range(2):
        async with MockNovita(MockNovitaConfig(clock=clock, seed=11)) as mock:
            ids = [await submit(http, mock) for _ in range(3)]
            plans.append([(i, mock.tasks[i].succeeded_at - mock.tasks[i].created_at)
                          for i in ids])
    assert plans[0] == plans[1]


# --- images -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["512*768", "1536*256"])
async def test_image_is_a_real_jpeg_of_the_requested_size(
    mock: MockNovita, http: aiohttp.ClientSession, clock: ManualClock, size: str
) -> None:
    task_id = await submit(http, mock, "a quiet harbour at dawn", size)
    finish(clock, mock, task_id)
    url = (await poll(http, mock, task_id))["images"][0]["image_url"]
    async with http.get(url) as resp:  # the image host needs no key, like CloudFront
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/jpeg"
        data = await resp.read()
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    assert f"{image.width}*{image.height}" == size
    async with http.get(url) as resp:
        assert await resp.read() == data  # cached, identical
    assert mock.tasks[task_id].downloads == 2
    assert mock.stats.downloads == 2


async def test_image_is_missing_until_the_task_succeeds(
    mock: MockNovita, http: aiohttp.ClientSession
) -> None:
    task_id = await submit(http, mock)
    for name in (f"{task_id}.jpeg", "unknown.jpeg", f"{task_id}.png"):
        async with http.get(f"{mock.base_url}/images/{name}") as resp:
            assert resp.status == 404
            assert resp.content_type == "application/xml"
            assert "NoSuchKey" in await resp.text()


async def test_plain_images_when_prompt_drawing_is_off(
    clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    async with MockNovita(MockNovitaConfig(clock=clock, draw_prompt=False)) as mock:
        first, second = await submit(http, mock, "one"), await submit(http, mock, "two")
        clock.advance(1000)
        bodies = []
        for task_id in (first, second):
            async with http.get(mock.image_url(task_id)) as resp:
                bodies.append(await resp.read())
    assert bodies[0] == bodies[1]  # rendered once per size
    assert Image.open(io.BytesIO(bodies[0])).size == (512, 512)


# --- faults: requests -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "reason"),
    [
        (Fault.BAD_KEY, 403, "INVALID_API_KEY"),
        (Fault.BALANCE, 400, "BILLING_BALANCE_NOT_ENOUGH"),
        (Fault.ILLEGAL_PROMPT, 400, "ILLEGAL_PROMPT"),
        (Fault.SERVER_ERROR, 500, "CREATE_TASK_FAILED"),
        (Fault.RATE_LIMIT_NO_RETRY_AFTER, 429, "RATE_LIMIT_EXCEEDED"),
    ],
)
async def test_submit_faults_hit_the_next_n_submits(
    mock: MockNovita, http: aiohttp.ClientSession, fault: Fault, status: int, reason: str
) -> None:
    mock.faults.inject(fault, times=2)
    for _ in range(2):
        async with http.post(mock.base_url + SUBMIT, json={"prompt": "x"}, headers=AUTH) as resp:
            assert resp.status == status
            assert (await error_of(resp))["reason"] == reason
            assert "Retry-After" not in resp.headers
    assert mock.tasks == {}
    await submit(http, mock)  # the third one is clean
    assert mock.faults.served == {fault: 2}


async def test_rate_limit_sends_retry_after(mock: MockNovita,
                                            http: aiohttp.ClientSession) -> None:
    mock.faults.inject(Fault.RATE_LIMIT)
    mock.faults.inject(Fault.RATE_LIMIT, retry_after=7, on=Endpoint.POLL)
    async with http.post(mock.base_url + SUBMIT, json={"prompt": "x"}, headers=AUTH) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "2"  # the configured default (time_scale 1)
    task_id = await submit(http, mock)
    async with http.get(mock.base_url + RESULT, params={"task_id": task_id},
                        headers=AUTH) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "7"
        assert (await error_of(resp))["reason"] == "RATE_LIMIT_EXCEEDED"


async def test_poll_server_errors_json_and_html(mock: MockNovita,
                                                http: aiohttp.ClientSession) -> None:
    task_id = await submit(http, mock)
    mock.faults.inject(Fault.SERVER_ERROR, on=Endpoint.POLL)
    mock.faults.inject(Fault.BAD_GATEWAY, on=Endpoint.POLL, times=2)
    mock.faults.inject(Fault.SERVICE_UNAVAILABLE, on=Endpoint.POLL)
    url = mock.base_url + RESULT
    async with http.get(url, params={"task_id": task_id}, headers=AUTH) as resp:
        assert resp.status == 500
        assert (await error_of(resp))["reason"] == "GET_RESULT_FAILED"
    for expected in (502, 502, 503):
        async with http.get(url, params={"task_id": task_id}, headers=AUTH) as resp:
            assert resp.status == expected
            assert resp.content_type == "text/html"
            assert f"<h1>{expected}" in await resp.text()
    await poll(http, mock, task_id)
    assert mock.tasks[task_id].polls == 5  # faulted polls of a known task still count
    assert mock.stats.errors_by_reason == {"GET_RESULT_FAILED": 1, "502": 2, "503": 1}


async def test_injected_task_not_found_and_task_filter(
    mock: MockNovita, http: aiohttp.ClientSession
) -> None:
    first, second = await submit(http, mock), await submit(http, mock)
    mock.faults.inject(Fault.TASK_NOT_FOUND, task_id=second)
    await poll(http, mock, first)  # other tasks are untouched
    async with http.get(mock.base_url + RESULT, params={"task_id": second},
                        headers=AUTH) as resp:
        assert resp.status == 404
        assert (await error_of(resp))["reason"] == "TASK_NOT_FOUND"
    await poll(http, mock, second)


async def test_forever_faults_until_cleared(mock: MockNovita,
                                            http: aiohttp.ClientSession) -> None:
    mock.faults.inject(Fault.BAD_KEY, times=None)
    for _ in range(3):
        async with http.post(mock.base_url + SUBMIT, json={"prompt": "x"}, headers=AUTH) as resp:
            assert resp.status == 403
    mock.faults.clear()
    await submit(http, mock)
    with pytest.raises(ValueError):
        mock.faults.inject(Fault.BAD_KEY, times=0)


# --- faults: tasks ----------------------------------------------------------------------------


async def test_failed_task_reports_reason(mock: MockNovita, http: aiohttp.ClientSession,
                                          clock: ManualClock) -> None:
    mock.faults.inject(Fault.FAILED, reason="worker crashed")
    failing, healthy = await submit(http, mock), await submit(http, mock)
    clock.advance(1000)
    body = await poll(http, mock, failing)
    assert body["task"]["status"] == "TASK_STATUS_FAILED"
    assert body["task"]["reason"] == "worker crashed"
    assert body["images"] == []
    assert mock.tasks[failing].detected_at == clock()
    assert (await poll(http, mock, healthy))["task"]["status"] == "TASK_STATUS_SUCCEED"
    async with http.get(mock.image_url(failing)) as resp:
        assert resp.status == 404


async def test_never_finishing_task(mock: MockNovita, http: aiohttp.ClientSession,
                                    clock: ManualClock) -> None:
    mock.faults.inject(Fault.NEVER_FINISH)
    task_id = await submit(http, mock)
    clock.advance(1e6)
    assert (await poll(http, mock, task_id))["task"]["status"] == "TASK_STATUS_PROCESSING"
    assert mock.tasks[task_id].succeeded_at == float("inf")


async def test_unknown_status_then_success(mock: MockNovita, http: aiohttp.ClientSession,
                                           clock: ManualClock) -> None:
    mock.faults.inject(Fault.UNKNOWN_STATUS)
    task_id = await submit(http, mock)
    body = await poll(http, mock, task_id)
    assert body["task"]["status"] == "TASK_STATUS_UNKNOWN"
    assert TaskResult.from_json(body).status is TaskStatus.UNKNOWN
    finish(clock, mock, task_id)
    assert (await poll(http, mock, task_id))["task"]["status"] == "TASK_STATUS_SUCCEED"


async def test_nsfw_flagged_result(mock: MockNovita, http: aiohttp.ClientSession,
                                   clock: ManualClock) -> None:
    mock.faults.inject(Fault.NSFW)
    task_id = await submit(http, mock)
    finish(clock, mock, task_id)
    body = await poll(http, mock, task_id)
    assert body["extra"]["has_nsfw_contents"] == [True]
    assert body["images"][0]["nsfw_detection_result"] == {"valid": True, "confidence": 0.97}
    assert TaskResult.from_json(body).nsfw_flagged


async def test_expired_image_url(mock: MockNovita, http: aiohttp.ClientSession,
                                 clock: ManualClock) -> None:
    mock.faults.inject(Fault.EXPIRED_IMAGE)
    task_id = await submit(http, mock)
    finish(clock, mock, task_id)
    async with http.get(mock.image_url(task_id)) as resp:
        assert resp.status == 403
        assert resp.content_type == "application/xml"
        text = await resp.text()
    assert "<Code>AccessDenied</Code>" in text and "expired" in text


@pytest.mark.parametrize("fault", [Fault.OVERSIZED_IMAGE, Fault.OVERSIZED_IMAGE_CHUNKED])
async def test_oversized_images(mock: MockNovita, http: aiohttp.ClientSession,
                                clock: ManualClock, fault: Fault) -> None:
    mock.faults.inject(fault, oversized_bytes=500_000)
    task_id = await submit(http, mock)
    finish(clock, mock, task_id)
    async with http.get(mock.image_url(task_id)) as resp:
        assert resp.status == 200
        assert resp.content_type == "image/jpeg"
        if fault is Fault.OVERSIZED_IMAGE:
            assert resp.headers["Content-Length"] == "500000"
        else:
            assert "Content-Length" not in resp.headers
            assert resp.headers["Transfer-Encoding"] == "chunked"
        data = await resp.read()
    assert len(data) >= 500_000
    assert data.startswith(b"\xff\xd8\xff")


async def test_download_faults(mock: MockNovita, http: aiohttp.ClientSession,
                               clock: ManualClock) -> None:
    task_id = await submit(http, mock)
    finish(clock, mock, task_id)
    mock.faults.inject(Fault.BAD_GATEWAY, on=Endpoint.DOWNLOAD)
    async with http.get(mock.image_url(task_id)) as resp:
        assert resp.status == 502
    async with http.get(mock.image_url(task_id)) as resp:
        assert resp.status == 200


# --- faults: prompt markers -------------------------------------------------------------------


def test_marker_parsing() -> None:
    markers = parse_markers("fox [mock:failed] [mock:server-error@poll*3] [mock:nope] [mock:nsfw]")
    assert [(m.fault, m.endpoint, m.times) for m in markers] == [
        (Fault.FAILED, None, None),
        (Fault.SERVER_ERROR, Endpoint.POLL, 3),
        (Fault.NSFW, None, None),
    ]


async def test_failed_marker(mock: MockNovita, http: aiohttp.ClientSession,
                             clock: ManualClock) -> None:
    task_id = await submit(http, mock, "a castle [mock:failed]")
    clock.advance(1000)
    assert (await poll(http, mock, task_id))["task"]["status"] == "TASK_STATUS_FAILED"


async def test_poll_marker_affects_only_its_task(
    mock: MockNovita, http: aiohttp.ClientSession
) -> None:
    marked = await submit(http, mock, "a castle [mock:server-error@poll*2]")
    other = await submit(http, mock, "a castle")
    await poll(http, mock, other)
    statuses = []
    for _ in range(3):
        async with http.get(mock.base_url + RESULT, params={"task_id": marked},
                            headers=AUTH) as resp:
            statuses.append(resp.status)
    assert statuses == [500, 500, 200]


async def test_submit_markers_count_per_prompt(
    mock: MockNovita, http: aiohttp.ClientSession
) -> None:
    async def status_of(prompt: str) -> int:
        async with http.post(mock.base_url + SUBMIT, json={"prompt": prompt},
                             headers=AUTH) as resp:
            return resp.status

    limited = "busy [mock:rate-limit*2]"
    assert [await status_of(limited) for _ in range(3)] == [429, 429, 200]
    broke = "poor [mock:balance]"  # permanent: every time
    assert [await status_of(broke) for _ in range(3)] == [400, 400, 400]
    assert await status_of("[mock:illegal-prompt]") == 400
    assert await status_of("[mock:bad-key]") == 403


# --- scale, lifecycle, standalone -------------------------------------------------------------


async def test_start_stop_and_real_port() -> None:
    mock = MockNovita()
    with pytest.raises(RuntimeError):
        _ = mock.base_url
    base_url = await mock.start()
    assert re.match(r"^http://127\.0\.0\.1:\d+$", base_url)
    assert await mock.start() == base_url  # idempotent
    await mock.stop()
    await mock.stop()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.get(base_url + RESULT):
                pass


def test_standalone_main_prints_url_and_key_and_stops_on_sigterm() -> None:
    command = [
        sys.executable, "-c",
        "import sys; from fakes.novita.server import main; "
        "sys.exit(main(['--port', '0', '--key', 'demo-key', '--time-scale', '0.1']))",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            second = process.stdout.readline()
            assert re.match(r"^Mock Novita listening on http://127\.0\.0\.1:\d+$", first.strip())
            assert "NOVITA_API_KEY=demo-key" in second
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
