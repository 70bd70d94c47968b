"""Count Novita calls and their failures at the client's boundary, without touching the client.

`MeteredTaskClient` wraps anything shaped like the engine's `TaskClient`: every call counts as one
request of its operation; a call that raises counts as an error of its kind (the exception type,
e.g. `rate_limited`, `upstream_unavailable`, `task_not_found`). Per-attempt HTTP counts (each
retry) come from the client's own `stats` instead (see `BotMetrics.track_client_attempts`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from bot.imaging import ImageSize
from bot.jobs.edits import EditClient, EditRunner
from bot.jobs.engine import JobEngine, TaskClient
from bot.novita.edit import EditSource
from bot.novita.models import GeneratedImage, TaskResult
from bot.observability.metrics import error_kind

T = TypeVar("T")


class UpstreamRecorder(Protocol):
    def upstream_request(self, operation: str) -> None: ...

    def upstream_error(self, operation: str, kind: str) -> None: ...


class MeteredTaskClient:
    def __init__(self, inner: TaskClient, recorder: UpstreamRecorder) -> None:
        self.inner = inner
        self._recorder = recorder

    async def submit(self, prompt: str, size: ImageSize) -> str:
        return await self._count("submit", lambda: self.inner.submit(prompt, size))

    async def get_task(self, task_id: str) -> TaskResult:
        return await self._count("poll", lambda: self.inner.get_task(task_id))

    async def download(self, image: GeneratedImage, *, task_id: str | None = None) -> bytes:
        return await self._count("download", lambda: self.inner.download(image, task_id=task_id))

    async def _count(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        return await _counted(self._recorder, operation, call)


async def _counted(
    recorder: UpstreamRecorder, operation: str, call: Callable[[], Awaitable[T]]
) -> T:
    recorder.upstream_request(operation)
    try:
        return await call()
    except asyncio.CancelledError:
        raise  # a job cancelled or past its deadline: not the upstream's failure
    except Exception as exc:
        recorder.upstream_error(operation, error_kind(exc))
        raise


class MeteredEditClient:
    """Counts an `EditRunner`'s submits as operation `edit` (its polls and downloads go through
    the engine's client, metered there)."""

    def __init__(self, inner: EditClient, recorder: UpstreamRecorder) -> None:
        self.inner = inner
        self._recorder = recorder

    async def submit_edit(
        self,
        instruction: str,
        image: EditSource,
        *,
        seed: int | None = None,
        output_format: str = "jpeg",
    ) -> str:
        return await _counted(self._recorder, "edit", lambda: self.inner.submit_edit(
            instruction, image, seed=seed, output_format=output_format))


def meter_edits(runner: EditRunner, recorder: UpstreamRecorder) -> Callable[[], None]:
    """Like `meter_engine`, for the edit runner's submits; returns the undo."""
    original = runner.client
    runner.client = MeteredEditClient(original, recorder)

    def undo() -> None:
        runner.client = original

    return undo


def meter_engine(engine: JobEngine, recorder: UpstreamRecorder) -> Callable[[], None]:
    """Route the engine's client through a `MeteredTaskClient`; returns the undo.

    The engine outlives a bot in tests that restart the bot on the same services, so each bot
    wraps on start-up and unwraps on close instead of stacking wrappers.
    """
    original = engine.client
    engine.client = MeteredTaskClient(original, recorder)

    def undo() -> None:
        engine.client = original

    return undo
