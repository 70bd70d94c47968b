"""The mock Novita's control endpoint: every task's planned and observed times, for benchmarks.

`GET /_control/tasks` answers `{"now": …, "stats": {…}, "tasks": [{task_id, prompt, size,
created_at, processing_at, succeeded_at, detected_at, poll_times, download_times}, …]}`, all on
the mock's clock (`time.monotonic()` by default, which on Linux is one system-wide clock, so
other processes on the machine can compare their own timestamps with these). It lives under
`/_control/`, apart from Novita's routes, and is only installed when the config asks for it.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from fakes.novita.server import MockNovita

CONTROL_TASKS_PATH = "/_control/tasks"


def install_control(app: web.Application, mock: MockNovita) -> None:
    async def tasks(request: web.Request) -> web.Response:
        return web.json_response(
            {"now": mock.now(), "stats": asdict(mock.stats), "tasks": task_records(mock)}
        )

    app.router.add_get(CONTROL_TASKS_PATH, tasks)


def task_records(mock: MockNovita) -> list[dict[str, Any]]:
    """One JSON-ready record per task (a task that never finishes has `succeeded_at` None)."""
    return [
        {
            "task_id": task.task_id,
            "prompt": task.prompt,
            "size": task.size,
            "created_at": task.created_at,
            "processing_at": task.processing_at,
            "succeeded_at": task.succeeded_at if math.isfinite(task.succeeded_at) else None,
            "failed": task.will_fail,
            "detected_at": task.detected_at,
            "poll_times": task.poll_times,
            "download_times": [list(pair) for pair in task.download_times],
        }
        for task in mock.tasks.values()
    ]
