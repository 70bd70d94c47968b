"""The metered Novita client: each call and each error counted by operation and kind."""

from __future__ import annotations

import asyncio

import pytest

from bot.imaging import ImageSize
from bot.novita.errors import RateLimitedError
from bot.novita.models import GeneratedImage, TaskResult
from bot.observability.upstream import MeteredTaskClient


class Recorder:
    def __init__(self) -> None:
        self.requests: list[str] = []
        self.errors: list[tuple[str, str]] = []

    def upstream_request(self, operation: str) -> None:
        self.requests.append(operation)

    def upstream_error(self, operation: str, kind: str) -> None:
        self.errors.append((operation, kind))


class FlakyClient:
    def __init__(self) -> None:
        self.block = asyncio.Event()

    async def submit(self, prompt: str, size: ImageSize) -> str:
        raise RateLimitedError("slow down")

    async def get_task(self, task_id: str) -> TaskResult:
        await self.block.wait()  # never set: the call is cancelled
        raise AssertionError

    async def download(self, image: GeneratedImage, *, task_id: str | None = None) -> bytes:
        return b"jpeg"


async def test_metered_client_counts_calls_and_errors_by_kind() -> None:
    recorder = Recorder()
    client = MeteredTaskClient(FlakyClient(), recorder)
    with pytest.raises(RateLimitedError):
        await client.submit("p", ImageSize(512, 512))
    image = GeneratedImage("http://h/i.jpeg", 3600, "jpeg", None)
    assert await client.download(image, task_id="t") == b"jpeg"
    poll = asyncio.create_task(client.get_task("t"))
    await asyncio.sleep(0)
    poll.cancel()  # a job cancelled mid-poll is not an upstream error
    with pytest.raises(asyncio.CancelledError):
        await poll
    assert recorder.requests == ["submit", "download", "poll"]
    assert recorder.errors == [("submit", "rate_limited")]
