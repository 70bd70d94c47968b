"""A spec-faithful fake of Novita's Qwen-Image async API, served over a real socket (aiohttp.web).

Shared by the tests, the benchmarks and the local demo. It follows docs/novita-api.md:

* ``POST /v3/async/qwen-image-txt2img`` checks ``Authorization: Bearer <key>`` (none → 400
  MISSING_API_KEY, wrong → 403 INVALID_API_KEY), validates the JSON body (``prompt`` required,
  ``size`` ``W*H`` with each side 256–1536, default ``1024*1024``; else 400 INVALID_REQUEST_BODY)
  and answers ``{"task_id": "<uuid>"}``.
* ``GET /v3/async/task-result?task_id=…`` answers ``{extra, task, images, videos, audios}`` like the
  Qwen example (``task_type`` QWEN_IMAGE_TEXT_TO_IMAGE, ``eta``/``progress_percent`` 0 unless
  ``report_progress``; on SUCCEED one image whose ``image_url`` points back at this server,
  ``image_url_ttl`` "0", ``image_type`` "jpeg"). Unknown ids → 404 TASK_NOT_FOUND.
* ``GET /images/<task_id>.jpeg`` serves a real JPEG of the requested size with the prompt on it.
* ``POST /v3/async/qwen-image-edit`` (see `fakes.novita.edit`) checks the instruction and the
  ``image`` (a link it may fetch, or base64; ``accept_image_forms`` can limit it to one form) and
  runs a task whose image is the input, at its size, with the instruction drawn on it.

Every error uses Novita's envelope ``{"code", "reason", "message", "metadata"}``; gateway faults
send HTML and an expired image sends S3-style XML, as the real infrastructure would.

Status over time: each task is planned at submit — an optional queue wait, then a processing time
drawn from `TimingModel` (about 12 s at 512², 20 s at 1024², 30 s at 1536², ±15 % gaussian, all
times `time_scale`) — and its status is computed from the clock on each poll. Nothing runs per task,
so thousands of concurrent tasks are cheap, and with a `ManualClock` everything is deterministic::

    clock = ManualClock()
    config = MockNovitaConfig(time_scale=0.01, queue_probability=0, seed=1, clock=clock)
    async with MockNovita(config) as mock:           # or: base_url = await mock.start()
        client = NovitaClient(Secret(config.api_key), mock.base_url)
        task_id = await client.submit("a red fox", ImageSize(1024, 1024))
        record = mock.tasks[task_id]                 # MockTask: prompt, width, height, times
        clock.advance(record.succeeded_at - clock()) # the exact moment the status flips
        mock.faults.inject(Fault.BAD_GATEWAY, on=Endpoint.POLL, times=2)

`MockTask` records `created_at`, `processing_at`, `succeeded_at` (planned, on the mock's clock),
`poll_times`, `detected_at` (first poll that answered the terminal status) and `downloads`;
`mock.stats` counts requests per endpoint. Faults: see `fakes.novita.faults`
(programmatic `mock.faults.inject(...)` or prompt markers such as ``[mock:failed]``).

Run it alone with ``python -m bot mock-novita --port 8089`` (see `main`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
import random
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web

from bot.clock import Monotonic
from fakes.clock import ManualClock
from fakes.lifecycle import Served
from fakes.novita.control import install_control
from fakes.novita.edit import (
    EDIT_PATH,
    EDIT_TASK_TYPE,
    EditRefused,
    MockEdits,
    prompt_body,
    render_edit,
)
from fakes.novita.faults import (
    Endpoint,
    Fault,
    FaultBook,
    RequestFault,
    parse_markers,
)
from fakes.novita.images import render_sized_jpeg, target_jpeg_bytes
from fakes.novita.tasks import (
    DEFAULT_SECONDS_BY_PIXELS,
    FAILED,
    SUCCEED,
    MockTask,
    TimingModel,
)

__all__ = [
    "Endpoint",
    "Fault",
    "ManualClock",
    "MockNovita",
    "MockNovitaConfig",
    "MockStats",
    "MockTask",
    "main",
]

SUBMIT_PATH: Final = "/v3/async/qwen-image-txt2img"
RESULT_PATH: Final = "/v3/async/task-result"
IMAGE_PATH_PREFIX: Final = "/images/"
TASK_TYPE: Final = "QWEN_IMAGE_TEXT_TO_IMAGE"
MIN_SIDE: Final = 256
MAX_SIDE: Final = 1536
DEFAULT_SIZE: Final = "1024*1024"
_SIZE_RE: Final = re.compile(r"^(\d+)\*(\d+)$")
_IMAGE_NAME_RE: Final = re.compile(r"^(?P<task_id>[A-Za-z0-9-]+)\.(?P<ext>jpeg|png|webp)$")
_CHUNK: Final = 64 * 1024


@dataclass(frozen=True)
class MockNovitaConfig:
    """Everything that shapes the mock's behaviour. All durations are multiplied by `time_scale`."""

    api_key: str = "mock-key"
    time_scale: float = 1.0  # benches: ~0.05; tests: tiny (0.001) or a ManualClock
    seconds_by_pixels: tuple[tuple[int, float], ...] = DEFAULT_SECONDS_BY_PIXELS
    spread: float = 0.15  # relative std-dev of processing time
    queue_probability: float = 0.1  # share of tasks that wait in QUEUED first
    queue_wait_range: tuple[float, float] = (2.0, 8.0)  # seconds (then scaled)
    fixed_duration: float | None = None  # processing seconds for every task (then scaled)
    # Multiplies the processing time of the n-th submitted task (0-based): drift, regime changes.
    duration_multiplier: Callable[[int], float] | None = None
    report_progress: bool = False  # real Qwen-Image reports eta/progress 0; True fills them in
    seed: int | None = 0  # None → a different run every time
    clock: Monotonic = time.monotonic
    retry_after_seconds: float = 2.0  # Retry-After on injected 429s (then scaled)
    oversized_image_bytes: int = 26 * 1024 * 1024  # default body size for OVERSIZED_IMAGE faults
    max_prompt_chars: int | None = None  # Novita documents none; set to enforce one
    draw_prompt: bool = True  # False → plain JPEGs (cheaper for big benchmarks)
    jpeg_quality: int = 85
    image_cache_size: int = 128  # rendered JPEGs kept in memory (LRU)
    # Pad JPEGs to realistic file sizes ((pixels, bytes) anchors, e.g. REALISTIC_JPEG_BYTES).
    jpeg_bytes_by_pixels: tuple[tuple[int, int], ...] | None = None
    control_api: bool = False  # serve GET /_control/tasks (benchmarks read timings there)
    # Edits: which `image` forms the mock reads ("url", "base64"), and the loopback host:port
    # it may fetch image links from besides itself (e.g. a FakeImageHost's `host_port`).
    accept_image_forms: frozenset[str] = frozenset({"url", "base64"})
    edit_fetch_hosts: tuple[str, ...] = ()

    @property
    def timing(self) -> TimingModel:
        return TimingModel(
            time_scale=self.time_scale,
            seconds_by_pixels=self.seconds_by_pixels,
            spread=self.spread,
            queue_probability=self.queue_probability,
            queue_wait_range=self.queue_wait_range,
            fixed_duration=self.fixed_duration,
        )


@dataclass
class MockStats:
    """Requests seen per endpoint (including rejected ones) and error replies sent."""

    submits: int = 0  # edits included
    edits: int = 0
    polls: int = 0
    downloads: int = 0
    errors: int = 0
    errors_by_reason: dict[str, int] = field(default_factory=dict)


class _Rejection(Exception):
    """Raised inside a handler to answer with an error reply."""

    def __init__(self, response: web.Response) -> None:
        self.response = response


def novita_error(
    status: int,
    reason: str,
    message: str,
    *,
    metadata: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """Novita's flat error envelope."""
    body = {"code": status, "reason": reason, "message": message, "metadata": metadata or {}}
    return web.json_response(body, status=status, headers=headers)


def gateway_page(status: int) -> web.Response:
    """What a load balancer in front of the API sends: HTML, not JSON."""
    title = {502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable"}.get(
        status, f"{status} Error"
    )
    html = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return web.Response(status=status, text=html, content_type="text/html")


def s3_error(status: int, code: str, message: str) -> web.Response:
    """What an object store answers for a missing or expired object."""
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    )
    return web.Response(status=status, text=xml, content_type="application/xml")


class MockNovita(Served):
    """The fake server. `tasks`, `stats` and `faults` are public for tests and benchmarks."""

    def __init__(self, config: MockNovitaConfig | None = None) -> None:
        self.config = config or MockNovitaConfig()
        self.tasks: dict[str, MockTask] = {}
        self.stats = MockStats()
        self.faults = FaultBook()
        self._timing = self.config.timing
        self._rng = random.Random(self.config.seed)
        seed = None if self.config.seed is None else self.config.seed + 1
        self._id_rng = random.Random(seed)
        self._images: OrderedDict[str, asyncio.Future[bytes]] = OrderedDict()  # key → rendering
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self.edits = MockEdits(
            self.config.accept_image_forms,
            lambda: (*self.config.edit_fetch_hosts, self.base_url.removeprefix("http://")),
            self.config.max_prompt_chars,
        )

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the mock is not running; await start() first")
        return self._base_url

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._novita_not_found])
        app.router.add_post(SUBMIT_PATH, self._submit)
        app.router.add_post(EDIT_PATH, self._submit_edit)
        app.router.add_get(RESULT_PATH, self._task_result)
        app.router.add_get(IMAGE_PATH_PREFIX + "{name}", self._image)
        if self.config.control_api:
            install_control(app, self)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on a real socket (`port=0` picks a free one) and return the base URL."""
        if self._runner is not None:
            return self.base_url
        runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_port = runner.addresses[0][1]
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self._base_url = f"http://{shown_host}:{bound_port}"
        return self._base_url

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        await self.edits.close()
        self._base_url = None
        for rendering in self._images.values():
            rendering.cancel()
        self._images.clear()

    # --- conveniences for tests and benchmarks --------------------------------------------------

    def now(self) -> float:
        return self.config.clock()

    def task(self, task_id: str) -> MockTask:
        return self.tasks[task_id]

    def image_url(self, task_id: str) -> str:
        return f"{self.base_url}{IMAGE_PATH_PREFIX}{task_id}.jpeg"

    # --- handlers -------------------------------------------------------------------------------

    @web.middleware
    async def _novita_not_found(
        self, request: web.Request, handler: Any
    ) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except _Rejection as rejection:
            response = rejection.response
        except web.HTTPNotFound:
            if not request.path.startswith("/v3/"):
                raise
            response = novita_error(404, "API_NOT_FOUND", f"no API at {request.path}")
        if response.status >= 400:
            self._count_error(response)
        return response

    def _count_error(self, response: web.StreamResponse) -> None:
        self.stats.errors += 1
        key = str(response.status)
        if isinstance(response, web.Response) and response.content_type == "application/json":
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                assert isinstance(response.body, bytes)
                key = json.loads(response.body).get("reason", key)
        self.stats.errors_by_reason[key] = self.stats.errors_by_reason.get(key, 0) + 1

    def _check_auth(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "").strip()
        scheme, _, token = header.partition(" ")
        token = token.strip()
        # No header, or "Bearer" with nothing after it (UNCONFIRMED which one Novita sends then).
        if not header or (scheme.lower() == "bearer" and not token):
            raise _Rejection(novita_error(400, "MISSING_API_KEY", "missing api key"))
        expected = self.config.api_key.encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected):
            raise _Rejection(novita_error(403, "INVALID_API_KEY", "invalid api key"))

    async def _submit(self, request: web.Request) -> web.Response:
        self.stats.submits += 1
        self._check_auth(request)
        prompt, width, height = await self._validated_body(request)
        task = self._accept_task(prompt, width, height)
        if self.faults.submit_gate is not None:
            await self.faults.submit_gate.hold()  # created and billed; the answer waits
        return web.json_response({"task_id": task.task_id})

    async def _submit_edit(self, request: web.Request) -> web.Response:
        """Edits share the submit endpoint's faults (`Endpoint.SUBMIT`) and markers."""
        self.stats.submits += 1
        self.stats.edits += 1
        self._check_auth(request)
        try:
            edit = await self.edits.read(await request.read())
        except EditRefused as no:
            raise _Rejection(novita_error(no.status, no.reason, no.message)) from None
        task = self._accept_task(edit.prompt, edit.width, edit.height)
        task.task_type, task.image_type = EDIT_TASK_TYPE, edit.output_format
        task.source_image = edit.image
        return web.json_response({"task_id": task.task_id})

    def _accept_task(self, prompt: str, width: int, height: int) -> MockTask:
        """Apply armed faults and prompt markers, then plan the task."""
        armed = self.faults.take_request_fault(Endpoint.SUBMIT, None)
        if armed is not None:
            raise _Rejection(self._fault_reply(armed.fault, Endpoint.SUBMIT, armed))
        markers = parse_markers(prompt)
        marker_fault = self.faults.marker_submit_fault(prompt, markers)
        if marker_fault is not None:
            raise _Rejection(self._fault_reply(marker_fault, Endpoint.SUBMIT, None))
        marked = {marker.fault for marker in markers if marker.fault.is_task_fault}
        task = self._create_task(prompt, width, height, marked)
        self.faults.arm_task_markers(task.task_id, markers)
        return task

    async def _validated_body(self, request: web.Request) -> tuple[str, int, int]:
        def invalid(message: str) -> _Rejection:
            return _Rejection(novita_error(400, "INVALID_REQUEST_BODY", message))

        try:
            body, prompt = prompt_body(await request.read(), self.config.max_prompt_chars)
        except EditRefused as no:
            raise _Rejection(novita_error(no.status, no.reason, no.message)) from None
        size = body.get("size", DEFAULT_SIZE)
        match = _SIZE_RE.match(size) if isinstance(size, str) else None
        if match is None:
            raise invalid("size must be a string like '1024*1024'")
        width, height = int(match.group(1)), int(match.group(2))
        if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
            raise invalid(f"size: width and height must be between {MIN_SIDE} and {MAX_SIDE}")
        return prompt, width, height

    def _create_task(
        self, prompt: str, width: int, height: int, marked_faults: set[Fault]
    ) -> MockTask:
        now = self.now()
        queue_wait, run = self._timing.plan(self._rng, width, height)
        if self.config.duration_multiplier is not None:
            run *= self.config.duration_multiplier(len(self.tasks))
        plan = self.faults.take_task_plan()
        faults = frozenset(plan.faults | marked_faults)
        finishes_at = math.inf if Fault.NEVER_FINISH in faults else now + queue_wait + run
        task_id = str(uuid.UUID(int=self._id_rng.getrandbits(128), version=4))
        task = MockTask(
            task_id=task_id,
            prompt=prompt,
            width=width,
            height=height,
            created_at=now,
            processing_at=now + queue_wait,
            succeeded_at=finishes_at,
            faults=faults,
            failure_reason=plan.failure_reason if Fault.FAILED in faults else "",
            oversized_bytes=plan.oversized_bytes or self.config.oversized_image_bytes,
        )
        self.tasks[task_id] = task
        return task

    async def _task_result(self, request: web.Request) -> web.Response:
        self.stats.polls += 1
        self._check_auth(request)
        task_id = request.query.get("task_id", "").strip()
        if not task_id:
            raise _Rejection(novita_error(400, "INVALID_REQUEST_BODY", "task_id is required"))
        now = self.now()
        task = self.tasks.get(task_id)
        if task is not None:
            task.poll_times.append(now)
        armed = self.faults.take_request_fault(Endpoint.POLL, task_id)
        if armed is not None:
            raise _Rejection(self._fault_reply(armed.fault, Endpoint.POLL, armed))
        if task is None:
            raise _Rejection(
                novita_error(404, "TASK_NOT_FOUND", "task not found", metadata={"task_id": task_id})
            )
        status = task.status_at(now)
        if status in (SUCCEED, FAILED) and task.detected_at is None:
            task.detected_at = now
        return web.json_response(self._result_body(task, status, now, request))

    def _result_body(
        self, task: MockTask, status: str, now: float, request: web.Request
    ) -> dict[str, Any]:
        progress, eta = task.progress_at(now) if self.config.report_progress else (0, 0)
        flagged = Fault.NSFW in task.faults
        images: list[dict[str, Any]] = []
        if status == SUCCEED:
            base = str(request.url.origin())
            images.append(
                {
                    "image_url": f"{base}{IMAGE_PATH_PREFIX}{task.task_id}.{task.image_type}",
                    "image_url_ttl": "0",
                    "image_type": task.image_type,
                    "nsfw_detection_result": (
                        {"valid": True, "confidence": 0.97} if flagged else None
                    ),
                }
            )
        return {
            "extra": {"has_nsfw_contents": [True] if flagged and status == SUCCEED else []},
            "task": {
                "task_id": task.task_id,
                "task_type": task.task_type,
                "status": status,
                "reason": task.failure_reason if status == FAILED else "",
                "eta": eta,
                "progress_percent": progress,
            },
            "images": images,
            "videos": [],
            "audios": [],
        }

    async def _image(self, request: web.Request) -> web.StreamResponse:
        self.stats.downloads += 1
        arrived = self.now()
        match = _IMAGE_NAME_RE.match(request.match_info["name"])
        task = self.tasks.get(match.group("task_id")) if match else None
        if task is None or match is None or match.group("ext") != task.image_type or (
                task.status_at(self.now()) != SUCCEED):
            return s3_error(404, "NoSuchKey", "The specified key does not exist.")
        armed = self.faults.take_request_fault(Endpoint.DOWNLOAD, task.task_id)
        if armed is not None:
            return self._fault_reply(armed.fault, Endpoint.DOWNLOAD, armed)
        if Fault.EXPIRED_IMAGE in task.faults:
            return s3_error(403, "AccessDenied", "Request has expired")
        jpeg = await self._jpeg_for(task)
        task.downloads += 1
        if Fault.OVERSIZED_IMAGE_CHUNKED in task.faults:
            return await self._stream_oversized(request, jpeg, task.oversized_bytes)
        if Fault.OVERSIZED_IMAGE in task.faults:
            jpeg = jpeg + bytes(max(0, task.oversized_bytes - len(jpeg)))
        # Streamed with a Content-Length, so the mock sees when the last byte left (timings).
        response = web.StreamResponse(headers={"Content-Type": f"image/{task.image_type}"})
        response.content_length = len(jpeg)
        await response.prepare(request)
        await response.write(jpeg)
        await response.write_eof()
        task.download_times.append((arrived, self.now()))
        return response

    async def _stream_oversized(
        self, request: web.Request, jpeg: bytes, total: int
    ) -> web.StreamResponse:
        """Chunked transfer: no Content-Length, so only counting bytes reveals the size."""
        response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):  # clients are expected to hang up early
            await response.write(jpeg)
            padding = bytes(_CHUNK)
            sent = len(jpeg)
            while sent < total:
                await response.write(padding)
                sent += _CHUNK
            await response.write_eof()
        return response

    async def _jpeg_for(self, task: MockTask) -> bytes:
        """Render once per task (per size when prompts are not drawn), off the event loop."""
        key = task.task_id if self.config.draw_prompt or task.source_image else task.size
        rendering = self._images.get(key)
        if rendering is None:
            rendering = asyncio.ensure_future(asyncio.to_thread(self._render, task))
            self._images[key] = rendering
            while len(self._images) > self.config.image_cache_size:
                self._images.popitem(last=False)
        else:
            self._images.move_to_end(key)
        try:
            return await asyncio.shield(rendering)
        except Exception:
            self._images.pop(key, None)
            raise

    def _render(self, task: MockTask) -> bytes:
        """The task's picture (blocking): an edit of its input, or the prompt poster."""
        if task.source_image is not None:
            return render_edit(task.source_image, task.prompt, task.image_type,
                               self.config.jpeg_quality)
        caption = f"mock novita · {task.width}×{task.height} · task {task.task_id[:8]}"
        anchors = self.config.jpeg_bytes_by_pixels
        target = target_jpeg_bytes(task.width, task.height, anchors) if anchors else None
        prompt = task.prompt if self.config.draw_prompt else ""
        return render_sized_jpeg(prompt, task.width, task.height, caption,
                                 self.config.jpeg_quality, target)

    def _fault_reply(
        self, fault: Fault, endpoint: Endpoint, armed: RequestFault | None
    ) -> web.Response:
        self.faults.record_served(fault)
        if fault is Fault.BAD_KEY:
            return novita_error(403, "INVALID_API_KEY", "invalid api key")
        if fault is Fault.BALANCE:
            return novita_error(400, "BILLING_BALANCE_NOT_ENOUGH", "not enough balance")
        if fault is Fault.ILLEGAL_PROMPT:
            return novita_error(400, "ILLEGAL_PROMPT", "prompt contains inappropriate content")
        if fault in (Fault.RATE_LIMIT, Fault.RATE_LIMIT_NO_RETRY_AFTER):
            headers: dict[str, str] = {}
            if fault is Fault.RATE_LIMIT:
                headers["Retry-After"] = f"{self._retry_after(armed):g}"
            return novita_error(
                429, "RATE_LIMIT_EXCEEDED", "rate limit exceeded, please retry later",
                headers=headers,
            )
        if fault is Fault.SERVER_ERROR:
            reason = "CREATE_TASK_FAILED" if endpoint is Endpoint.SUBMIT else "GET_RESULT_FAILED"
            return novita_error(500, reason, "internal server error")
        if fault is Fault.BAD_GATEWAY:
            return gateway_page(502)
        if fault is Fault.SERVICE_UNAVAILABLE:
            return gateway_page(503)
        if fault is Fault.TASK_NOT_FOUND:
            return novita_error(404, "TASK_NOT_FOUND", "task not found")
        raise AssertionError(f"{fault} is not a request fault")

    def _retry_after(self, armed: RequestFault | None) -> float:
        """Seconds: the injection's own value, else the configured default (scaled)."""
        if armed is not None and armed.retry_after is not None:
            return armed.retry_after
        return self.config.retry_after_seconds * self.config.time_scale


# --- standalone ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the mock until Ctrl-C or SIGTERM (options: `fakes.novita.standalone`)."""
    from fakes.novita.standalone import main as run_standalone  # it imports this module

    return run_standalone(argv)


if __name__ == "__main__":
    raise SystemExit(main())
