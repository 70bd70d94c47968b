"""The mock Novita's `POST /v3/async/qwen-image-edit` over real sockets with plain aiohttp."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from fakes.clock import ManualClock
from fakes.image_host import FakeImageHost, good_jpeg, good_png, truncated_jpeg
from fakes.novita.edit import EDIT_TASK_TYPE, MockEdits, image_form
from fakes.novita.server import Endpoint, Fault, MockNovita, MockNovitaConfig

pytestmark = pytest.mark.timeout(30)

KEY = "mock-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
EDIT = "/v3/async/qwen-image-edit"
RESULT = "/v3/async/task-result"
ERROR_KEYS = {"code", "reason", "message", "metadata"}


def picture(width: int, height: int, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 160, 90)).save(buffer, fmt)
    return buffer.getvalue()


def as_data_uri(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def host() -> AsyncIterator[FakeImageHost]:
    async with FakeImageHost() as server:
        yield server


async def start_mock(clock: ManualClock, host: FakeImageHost | None = None,
                     **options: Any) -> MockNovita:
    fetch = (host.host_port,) if host is not None else ()
    mock = MockNovita(MockNovitaConfig(clock=clock, queue_probability=0.0, seed=2,
                                       edit_fetch_hosts=fetch, **options))
    await mock.start()
    return mock


@pytest.fixture
async def mock(clock: ManualClock, host: FakeImageHost) -> AsyncIterator[MockNovita]:
    server = await start_mock(clock, host)
    yield server
    await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, mock: MockNovita, body: object,
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    async with http.post(mock.base_url + EDIT, json=body,
                         headers=AUTH if headers is None else headers) as response:
        return response.status, await response.json()


async def assert_refused(http: aiohttp.ClientSession, mock: MockNovita, body: object,
                         reason: str, status: int = 400) -> str:
    code, reply = await post(http, mock, body)
    assert (code, reply["code"], reply["reason"]) == (status, status, reason)
    assert set(reply) == ERROR_KEYS
    assert mock.tasks == {}
    return str(reply["message"])


# --- a good edit ----------------------------------------------------------------------------------


async def test_a_data_uri_edit_runs_like_a_generation_and_returns_the_edited_input(
    mock: MockNovita, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    source = picture(320, 200)
    status, reply = await post(http, mock, {"prompt": "paint it red",
                                            "image": as_data_uri(source)})
    assert status == 200 and set(reply) == {"task_id"}
    task = mock.tasks[reply["task_id"]]
    assert (task.width, task.height, task.prompt) == (320, 200, "paint it red")
    assert task.source_image == source and mock.stats.edits == mock.stats.submits == 1

    async with http.get(mock.base_url + RESULT, params={"task_id": task.task_id},
                        headers=AUTH) as response:
        running = await response.json()
    assert running["task"]["status"] == "TASK_STATUS_PROCESSING" and running["images"] == []

    clock.advance(task.succeeded_at - clock())
    async with http.get(mock.base_url + RESULT, params={"task_id": task.task_id},
                        headers=AUTH) as response:
        done = await response.json()
    assert done["task"]["task_type"] == EDIT_TASK_TYPE
    assert done["task"]["status"] == "TASK_STATUS_SUCCEED"
    image = done["images"][0]
    assert image["image_type"] == "jpeg" and image["image_url"].endswith(".jpeg")

    async with http.get(image["image_url"]) as response:
        assert response.content_type == "image/jpeg"
        result = await response.read()
    with Image.open(io.BytesIO(result)) as edited:
        assert (edited.format, edited.size) == ("JPEG", (320, 200))
        rgb = edited.convert("RGB")
        top = rgb.getpixel((10, 10))
        band = rgb.getpixel((5, 195))
    assert isinstance(top, tuple) and isinstance(band, tuple)
    assert all(abs(a - b) <= 12 for a, b in zip(top, (30, 160, 90), strict=True))  # the input
    assert band != top  # the instruction's band across the bottom


async def test_a_link_is_fetched_from_a_trusted_host(
    mock: MockNovita, host: FakeImageHost, http: aiohttp.ClientSession
) -> None:
    status, reply = await post(http, mock, {"prompt": "x", "image": host.url("good.jpeg"),
                                            "seed": 12345, "output_format": "webp"})
    assert status == 200
    task = mock.tasks[reply["task_id"]]
    assert task.source_image == good_jpeg() and host.requests == ["/good.jpeg"]
    assert task.image_type == "webp"


async def test_a_link_to_the_mocks_own_image_is_fetched(
    mock: MockNovita, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    async with http.post(mock.base_url + "/v3/async/qwen-image-txt2img", headers=AUTH,
                         json={"prompt": "a fox", "size": "512*768"}) as response:
        generated = (await response.json())["task_id"]
    clock.advance(mock.tasks[generated].succeeded_at - clock())
    status, reply = await post(http, mock, {"prompt": "add snow",
                                            "image": mock.image_url(generated)})
    assert status == 200
    assert (mock.tasks[reply["task_id"]].width, mock.tasks[reply["task_id"]].height) == (512, 768)


async def test_edits_share_the_submit_faults(
    mock: MockNovita, http: aiohttp.ClientSession
) -> None:
    mock.faults.inject(Fault.RATE_LIMIT, on=Endpoint.SUBMIT, times=1)
    status, reply = await post(http, mock, {"prompt": "x", "image": as_data_uri(good_png())})
    assert (status, reply["reason"]) == (429, "RATE_LIMIT_EXCEEDED")


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "words"), [
    ({"image": "data:image/png;base64,AAAA"}, "prompt is required"),
    ({"prompt": "  ", "image": "data:image/png;base64,AAAA"}, "prompt is required"),
    ({"prompt": "x"}, "image is required"),
    ({"prompt": "x", "image": ""}, "image is required"),
    ({"prompt": "x", "image": 5}, "image is required"),
    ({"prompt": "x", "image": "data:image/png;base64,AAAA", "seed": -2}, "seed"),
    ({"prompt": "x", "image": "data:image/png;base64,AAAA", "seed": 2**31}, "seed"),
    ({"prompt": "x", "image": "data:image/png;base64,AAAA", "seed": "1"}, "seed"),
    ({"prompt": "x", "image": "data:image/png;base64,AAAA", "output_format": "gif"},
     "output_format"),
    (["not", "an", "object"], "JSON object"),
])
async def test_bad_bodies_are_invalid_request_body(
    mock: MockNovita, http: aiohttp.ClientSession, body: object, words: str
) -> None:
    message = await assert_refused(http, mock, body, "INVALID_REQUEST_BODY")
    assert words in message


async def test_the_key_is_checked(mock: MockNovita, http: aiohttp.ClientSession) -> None:
    status, reply = await post(http, mock, {"prompt": "x", "image": as_data_uri(good_png())},
                               headers={})
    assert (status, reply["reason"]) == (400, "MISSING_API_KEY")


@pytest.mark.parametrize("image", [
    "data:image/png;base64,not base64!",
    "data:text/plain;base64,aGVsbG8=",
    as_data_uri(b"hello, not an image"),
    as_data_uri(truncated_jpeg(), "image/jpeg"),
    base64.b64encode(b"bare base64, still not an image").decode(),
])
async def test_undecodable_data_is_invalid_image_format(
    mock: MockNovita, http: aiohttp.ClientSession, image: str
) -> None:
    message = await assert_refused(http, mock, {"prompt": "x", "image": image},
                                   "INVALID_IMAGE_FORMAT")
    assert "image" in message


async def test_links_it_may_not_or_cannot_fetch_are_refused(
    mock: MockNovita, host: FakeImageHost, http: aiohttp.ClientSession
) -> None:
    for link in ("https://example.com/cat.png", "http://127.0.0.1:9/cat.png",
                 host.url("missing.png"), host.url("not-an-image.jpeg")):
        code, reply = await post(http, mock, {"prompt": "x", "image": link})
        assert code == 400 and reply["reason"] in {"INVALID_REQUEST_BODY", "INVALID_IMAGE_FORMAT"}
        assert "image" in reply["message"]
    assert host.requests == ["/missing.png", "/not-an-image.jpeg"]  # never anywhere else
    assert mock.tasks == {}


async def test_huge_images_exceed_the_resolution(
    mock: MockNovita, http: aiohttp.ClientSession
) -> None:
    await assert_refused(http, mock, {"prompt": "x", "image": as_data_uri(picture(4100, 8))},
                         "IMAGE_EXCEEDS_MAX_RESOLUTION")


# --- accepting one form only ----------------------------------------------------------------------


async def test_a_base64_only_mock_reads_a_link_as_bad_base64(
    clock: ManualClock, host: FakeImageHost, http: aiohttp.ClientSession
) -> None:
    mock = await start_mock(clock, host, accept_image_forms=frozenset({"base64"}))
    try:
        message = await assert_refused(http, mock, {"prompt": "x", "image": host.url("good.png")},
                                       "INVALID_IMAGE_FORMAT")
        assert "image is invalid" in message and host.requests == []
        status, _ = await post(http, mock, {"prompt": "x", "image": as_data_uri(good_png())})
        assert status == 200
        assert mock.edits.forms_seen == ["url", "base64"]
    finally:
        await mock.stop()


async def test_a_url_only_mock_reads_data_as_a_bad_link(
    clock: ManualClock, host: FakeImageHost, http: aiohttp.ClientSession
) -> None:
    mock = await start_mock(clock, host, accept_image_forms=frozenset({"url"}))
    try:
        message = await assert_refused(http, mock, {"prompt": "x",
                                                    "image": as_data_uri(good_png())},
                                       "INVALID_REQUEST_BODY")
        assert "image is invalid" in message
        status, _ = await post(http, mock, {"prompt": "x", "image": host.url("good.png")})
        assert status == 200
    finally:
        await mock.stop()


def test_forms_must_be_known_and_not_empty() -> None:
    for forms in (set(), {"url", "ftp"}):
        with pytest.raises(ValueError):
            MockEdits(forms, tuple)
    assert image_form("HTTPS://x/y.png") == "url" and image_form("iVBORw0KGgo=") == "base64"
