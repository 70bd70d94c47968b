"""`NovitaClient.submit_edit` against the mock Novita over real sockets: both `image` forms, the
one fallback, pinned modes, refusals, and the guarded re-download of a result's bytes.

Source images live on a `FakeImageHost` that the mock may fetch from (`edit_fetch_hosts`) and the
client trusts (`trusted_image_hosts`), as Discord's CDN would be for both in production.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

import pytest
from PIL import Image

from bot.config import Secret, SettingsError, load_settings
from bot.novita.client import NovitaClient
from bot.novita.edit import (
    EDIT_PATH,
    EditImageMode,
    EditSource,
    EditSubmitter,
    ImageForm,
    data_uri,
    edit_body,
    media_type,
    refuses_image_form,
)
from bot.novita.errors import (
    BadRequestError,
    EditImageRejectedError,
    ImageContentRefusedError,
    ImageHostRefusedError,
    InsufficientBalanceError,
    InvalidImageError,
    NovitaError,
    PromptRefusedError,
)
from bot.novita.models import TaskStatus
from bot.novita.retry import RetryPolicy
from fakes.clock import ManualClock
from fakes.image_host import FakeImageHost, good_jpeg, good_png, truncated_jpeg
from fakes.novita.server import Endpoint, Fault, MockNovita
from tests.unit.novita.conftest import MockNovitaFactory

pytestmark = pytest.mark.timeout(30)

KEY = "mock-key-edit-51c2"
POLICY = RetryPolicy(attempts=3, base_delay=0.5, max_delay=2.0)


@dataclass
class Stack:
    """A mock Novita and an image host on one manual clock, and the clients a test made."""

    clock: ManualClock
    mock: MockNovita
    host: FakeImageHost
    clients: list[NovitaClient] = field(default_factory=list)

    def client(self, mode: EditImageMode = EditImageMode.AUTO, *,
               trust_host: bool = True) -> NovitaClient:
        trusted = [self.mock.base_url.removeprefix("http://")]
        if trust_host:
            trusted.append(self.host.host_port)
        client = NovitaClient(Secret(KEY), self.mock.base_url, retry=POLICY, clock=self.clock,
                              sleep=self.clock.sleep, trusted_image_hosts=trusted,
                              edit_image_mode=mode)
        self.clients.append(client)
        return client

    async def finish(self, client: NovitaClient, task_id: str) -> bytes:
        """Let the task run out on the mock's clock, then download its image."""
        self.clock.advance(self.mock.tasks[task_id].succeeded_at - self.clock())
        result = await client.get_task(task_id)
        assert result.status is TaskStatus.SUCCEED
        return await client.download(result.images[0], task_id=task_id)


EditStackFactory = Callable[..., contextlib.AbstractAsyncContextManager[Stack]]


@pytest.fixture
def edit_stack(make_mock_novita: MockNovitaFactory, fake_time: ManualClock) -> EditStackFactory:
    """`async with edit_stack(forms=["base64"]) as stack:` — which `image` forms the mock reads."""

    @contextlib.asynccontextmanager
    async def make(forms: Iterable[str] = ("url", "base64")) -> AsyncIterator[Stack]:
        async with FakeImageHost() as host:
            mock = await make_mock_novita(api_key=KEY, queue_probability=0.0, seed=3,
                                          accept_image_forms=frozenset(forms),
                                          edit_fetch_hosts=(host.host_port,))
            stack = Stack(fake_time, mock, host)
            try:
                yield stack
            finally:
                for client in stack.clients:
                    await client.close()

    return make


@pytest.fixture
async def both(edit_stack: EditStackFactory) -> AsyncIterator[Stack]:
    async with edit_stack() as stack:
        yield stack


def size_of(data: bytes) -> tuple[str | None, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as image:
        return image.format, image.size


def assert_key_hidden(error: BaseException) -> None:
    assert KEY not in str(error) and KEY not in repr(error)


# --- the URL form -----------------------------------------------------------------------------


async def test_url_form_is_sent_first_and_the_result_is_the_edited_input(both: Stack) -> None:
    client = both.client()
    source = EditSource(url=both.host.url("good.jpeg"))
    task_id = await client.submit_edit("make the sky green", source)

    record = both.mock.tasks[task_id]
    assert both.mock.edits.forms_seen == ["url"]
    assert both.mock.edits.fetcher.fetched == [both.host.url("good.jpeg")]
    assert record.prompt == "make the sky green" and record.source_image == good_jpeg()
    assert (record.width, record.height) == (64, 48)
    assert both.host.requests == ["/good.jpeg"]  # fetched by Novita only, not by the bot
    image = await both.finish(client, task_id)
    assert size_of(image) == ("JPEG", (64, 48))
    assert client.edits.fallbacks == 0


async def test_output_format_and_seed_reach_novita(both: Stack) -> None:
    client = both.client()
    task_id = await client.submit_edit("sepia", EditSource(url=both.host.url("good.png")),
                                       seed=42, output_format="png")
    image = await both.finish(client, task_id)
    assert size_of(image) == ("PNG", (64, 48))


# --- the fallback -----------------------------------------------------------------------------


async def test_base64_only_novita_refuses_the_url_then_gets_one_data_uri(
    edit_stack: EditStackFactory,
) -> None:
    async with edit_stack(forms=["base64"]) as stack:
        client = stack.client()
        source = EditSource(url=stack.host.url("good.jpeg"))
        task_id = await client.submit_edit("add a hat", source)

        assert stack.mock.edits.forms_seen == ["url", "base64"]
        assert client.edits.fallbacks == 1
        # The bot re-downloaded the bytes itself, through the guarded download.
        assert stack.host.requests == ["/good.jpeg"]
        assert stack.mock.tasks[task_id].source_image == good_jpeg()
        assert stack.mock.stats.errors_by_reason == {"INVALID_IMAGE_FORMAT": 1}
        assert size_of(await stack.finish(client, task_id)) == ("JPEG", (64, 48))

        # The form that worked goes first from now on: no second refusal.
        await client.submit_edit("add a scarf", source)
        assert stack.mock.edits.forms_seen == ["url", "base64", "base64"]
        assert client.edits.preferred_form is ImageForm.BASE64
        assert client.edits.fallbacks == 1


async def test_url_only_novita_refuses_data_then_gets_the_url(
    edit_stack: EditStackFactory,
) -> None:
    async with edit_stack(forms=["url"]) as stack:
        client = stack.client()
        client.edits._first = ImageForm.BASE64  # as if base64 had worked before
        source = EditSource(url=stack.host.url("good.png"), data=good_png())
        task_id = await client.submit_edit("add a hat", source)
        assert stack.mock.edits.forms_seen == ["base64", "url"]
        assert stack.mock.stats.errors_by_reason == {"INVALID_REQUEST_BODY": 1}
        assert stack.mock.tasks[task_id].source_image == good_png()
        assert client.edits.preferred_form is ImageForm.URL


async def test_an_upload_without_a_url_goes_straight_to_base64(both: Stack) -> None:
    client = both.client()
    task_id = await client.submit_edit("blur it", EditSource(data=good_png()))
    assert both.mock.edits.forms_seen == ["base64"]
    assert both.mock.tasks[task_id].source_image == good_png()
    assert both.host.requests == []


# --- pinned modes -----------------------------------------------------------------------------


async def test_mode_url_never_falls_back(
    edit_stack: EditStackFactory,
) -> None:
    async with edit_stack(forms=["base64"]) as stack:
        client = stack.client(EditImageMode.URL)
        with pytest.raises(EditImageRejectedError) as caught:
            await client.submit_edit("add a hat", EditSource(url=stack.host.url("good.jpeg")))
        assert caught.value.reason == "INVALID_IMAGE_FORMAT" and caught.value.status == 400
        assert stack.mock.edits.forms_seen == ["url"]
        assert stack.host.requests == []
        assert_key_hidden(caught.value)


async def test_mode_url_without_a_url_sends_nothing(both: Stack) -> None:
    client = both.client(EditImageMode.URL)
    with pytest.raises(BadRequestError):
        await client.submit_edit("add a hat", EditSource(data=good_jpeg()))
    assert both.mock.stats.submits == 0


async def test_mode_base64_sends_only_data(
    edit_stack: EditStackFactory,
) -> None:
    async with edit_stack(forms=["base64"]) as stack:
        client = stack.client(EditImageMode.BASE64)
        task_id = await client.submit_edit("add a hat",
                                           EditSource(url=stack.host.url("good.jpeg")))
        assert stack.mock.edits.forms_seen == ["base64"]
        assert stack.mock.edits.fetcher.fetched == []
        assert stack.mock.tasks[task_id].source_image == good_jpeg()


async def test_mode_base64_against_a_url_only_novita_fails_typed(
    edit_stack: EditStackFactory,
) -> None:
    async with edit_stack(forms=["url"]) as stack:
        client = stack.client(EditImageMode.BASE64)
        with pytest.raises(EditImageRejectedError) as caught:
            await client.submit_edit("add a hat", EditSource(data=good_jpeg()))
        assert caught.value.reason == "INVALID_REQUEST_BODY"
        assert stack.mock.edits.forms_seen == ["base64"]
        assert_key_hidden(caught.value)


# --- refusals ---------------------------------------------------------------------------------


async def test_an_image_invalid_both_ways_is_one_typed_error(both: Stack) -> None:
    client = both.client()
    source = EditSource(url=both.host.url("truncated.jpeg"), data=truncated_jpeg())
    with pytest.raises(EditImageRejectedError) as caught:
        await client.submit_edit("add a hat", source)
    assert both.mock.edits.forms_seen == ["url", "base64"]
    assert caught.value.reason == "INVALID_IMAGE_FORMAT"
    assert client.edits.fallbacks == 1
    assert both.mock.tasks == {}
    assert_key_hidden(caught.value)
    assert "base64," not in str(caught.value)


async def test_a_result_that_no_longer_decodes_is_caught_by_the_bot(
    edit_stack: EditStackFactory,
) -> None:
    async with edit_stack(forms=["base64"]) as stack:
        client = stack.client()
        with pytest.raises(InvalidImageError):  # decoded after the guarded download
            await client.submit_edit("add a hat", EditSource(url=stack.host.url("truncated.jpeg")))
        assert stack.mock.edits.forms_seen == ["url"]


async def test_the_re_download_goes_through_the_guard(both: Stack) -> None:
    client = both.client(EditImageMode.BASE64, trust_host=False)
    with pytest.raises(ImageHostRefusedError):
        await client.submit_edit("add a hat", EditSource(url=both.host.url("good.jpeg")))
    assert both.host.requests == [] and both.mock.stats.submits == 0


async def test_other_refusals_are_not_retried_in_the_other_form(both: Stack) -> None:
    client = both.client()
    both.mock.faults.inject(Fault.BALANCE, on=Endpoint.SUBMIT, times=1)
    with pytest.raises(InsufficientBalanceError) as caught:
        await client.submit_edit("add a hat", EditSource(url=both.host.url("good.jpeg")))
    assert both.mock.edits.forms_seen == ["url"]
    assert_key_hidden(caught.value)


async def test_rate_limited_edits_are_retried_like_submits(both: Stack) -> None:
    client = both.client()
    both.mock.faults.inject(Fault.RATE_LIMIT, on=Endpoint.SUBMIT, times=1, retry_after=1)
    task_id = await client.submit_edit("add a hat", EditSource(url=both.host.url("good.jpeg")))
    assert task_id in both.mock.tasks
    assert client.stats.retries == 1 and client.edits.fallbacks == 0


async def test_wrong_key_is_typed_and_hidden(both: Stack) -> None:
    client = NovitaClient(Secret("not-the-key-77"), both.mock.base_url, retry=POLICY)
    both.clients.append(client)
    with pytest.raises(NovitaError) as caught:
        await client.submit_edit("add a hat", EditSource(data=good_jpeg()))
    assert caught.value.reason == "INVALID_API_KEY"
    assert "not-the-key-77" not in str(caught.value) and "not-the-key-77" not in repr(client)


# --- pure pieces ------------------------------------------------------------------------------


def error(reason: str | None, message: str = "x", status: int = 400) -> NovitaError:
    return BadRequestError(f"edit failed: {message}", status=status, reason=reason)


@pytest.mark.parametrize(("exc", "expected"), [
    (error("INVALID_IMAGE_FORMAT"), True),
    (error("INVALID_REQUEST_BODY", "image is invalid"), True),
    (error("INVALID_REQUEST_BODY", "Image must be a valid URL"), True),
    (error("INVALID_REQUEST_BODY", "seed out of range"), False),
    (error("INVALID_IMAGE_SIZE"), False),       # the image itself: the other form is the same
    (error("ILLEGAL_IMAGE_CONTENT"), False),
    (error(None, "image bad", status=500), False),
    (PromptRefusedError("edit failed: x", status=400, reason="ILLEGAL_PROMPT"), False),
])
def test_which_refusals_mean_try_the_other_form(exc: NovitaError, expected: bool) -> None:
    assert refuses_image_form(exc) is expected


class OneShotTransport:
    """Answers every create_task with `error`."""

    def __init__(self, error: NovitaError) -> None:
        self.error = error
        self.bodies: list[dict[str, object]] = []

    async def create_task(self, path: str, body: object, *, operation: str = "submit") -> str:
        assert path == EDIT_PATH and operation == "edit"
        assert isinstance(body, dict)
        self.bodies.append(body)
        raise self.error

    async def download(self, image: object, *, task_id: str | None = None) -> bytes:
        raise AssertionError("not needed")


@pytest.mark.parametrize(("reason", "kind"), [
    ("ILLEGAL_IMAGE_CONTENT", ImageContentRefusedError),
    ("IMAGE_EXCEEDS_MAX_RESOLUTION", EditImageRejectedError),
    ("IMAGE_FILE_EXCEEDS_MAX_SIZE", EditImageRejectedError),
    ("INVALID_IMAGE_SIZE", EditImageRejectedError),
])
async def test_image_refusals_get_edit_types_without_a_retry(
    reason: str, kind: type[NovitaError]
) -> None:
    transport = OneShotTransport(error(reason))
    with pytest.raises(kind):
        await EditSubmitter().submit(transport, "x", EditSource(url="https://cdn.example/a.png"))
    assert len(transport.bodies) == 1


def test_edit_body_leaves_the_default_seed_out() -> None:
    assert edit_body("x", "u", None, "jpeg") == {"prompt": "x", "image": "u",
                                                 "output_format": "jpeg"}
    assert edit_body("x", "u", -1, "jpeg") == {"prompt": "x", "image": "u",
                                               "output_format": "jpeg"}
    assert edit_body("x", "u", 7, "png")["seed"] == 7


def test_data_uris_name_the_real_type() -> None:
    assert data_uri(good_jpeg()).startswith("data:image/jpeg;base64,/9j/")
    assert data_uri(good_png()).startswith("data:image/png;base64,")
    assert media_type(b"RIFF\0\0\0\0WEBPVP8 ") == "image/webp"
    with pytest.raises(EditImageRejectedError):
        data_uri(b"<html>not an image</html>")


async def test_arguments_are_checked_before_any_request() -> None:
    transport = OneShotTransport(error("INVALID_IMAGE_FORMAT"))
    submitter = EditSubmitter()
    source = EditSource(url="https://cdn.example/a.png")
    for kwargs in ({"seed": -2}, {"seed": 2**31}, {"output_format": "gif"}):
        with pytest.raises(ValueError):
            await submitter.submit(transport, "x", source, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await submitter.submit(transport, "  ", source)
    with pytest.raises(ValueError):
        EditSource()
    assert transport.bodies == []
    assert source.host == "cdn.example" and "data" not in repr(EditSource(data=b"abc"))


def test_the_mode_setting_is_parsed_and_reaches_the_client() -> None:
    settings = load_settings(env_file=None, environ={"NOVITA_API_KEY": KEY,
                                                     "NOVITA_EDIT_IMAGE_MODE": "Base64"})
    assert settings.novita_edit_image_mode == "base64"
    assert NovitaClient.from_settings(settings).edits.mode is EditImageMode.BASE64
    assert load_settings(env_file=None, environ={}).novita_edit_image_mode == "auto"
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=None, environ={"NOVITA_EDIT_IMAGE_MODE": "both"})
    assert "must be one of auto, url, base64" in caught.value.render()
