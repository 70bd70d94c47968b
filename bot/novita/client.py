"""`NovitaClient`: the only code that talks HTTP to Novita and to the image host.

One `aiohttp.ClientSession` per client, created lazily inside the running loop and closed once.
Every failure leaves as a typed `bot.novita.errors.NovitaError`; the API key never appears in a
log line, an exception or a repr.

Retry rules (see docs/novita-api.md §3):
- submit is retried only when no task can have been created: 429, or the connection never
  opened. A 5xx or a timeout may have created (and billed) a task, so it is never repeated here.
- polling and downloading are idempotent, so 5xx, 429, timeouts and connection errors are
  retried with exponential backoff and full jitter. A malformed task-result reply is not retried
  here: the job engine polls again on its own schedule and gives up after a few in a row.

Edits (`submit_edit`) go through the same `create_task` as txt2img; which form the image takes,
and the one fallback between them, live in `bot.novita.edit`.

Downloads go through a second session that only talks to public addresses (see
`bot.novita.download_guard`), follow at most `MAX_IMAGE_REDIRECTS` redirects (each hop checked
again), give up on hosts that stall or trickle, and decode the image before returning it (see
`bot.novita.image_check`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import aiohttp
from aiohttp.abc import AbstractResolver
from multidict import CIMultiDictProxy
from yarl import URL

from bot.clock import Monotonic, Sleep
from bot.config import Secret, Settings
from bot.imaging import ImageSize
from bot.novita.download_guard import BlockedAddressError, DownloadGuard, GuardedResolver
from bot.novita.edit import EditImageMode, EditSource, EditSubmitter
from bot.novita.errors import (
    AuthenticationError,
    BadRequestError,
    ConnectionFailedError,
    ImageHostRefusedError,
    ImageHostTooSlowError,
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
from bot.novita.image_check import ImageChecker
from bot.novita.models import GeneratedImage, TaskResult
from bot.novita.ratelimit import SubmitRateLimiter
from bot.novita.retry import RetryPolicy, parse_retry_after
from bot.novita.wire import (
    content_length,
    excerpt,
    looks_like_image,
    parse_error_body,
    redirect_target,
    task_id_from_submit,
    task_result_from,
    transport_errors,
)

log = logging.getLogger("bot.novita")

SUBMIT_PATH: Final = "/v3/async/qwen-image-txt2img"
TASK_RESULT_PATH: Final = "/v3/async/task-result"
USER_AGENT: Final = f"imagine-bot/0.1 (+discord bot; aiohttp/{aiohttp.__version__})"

# Told the moment a submit request leaves (past the local rate limit): from then on Novita may
# have the task, answered or not, so a cancel counts. Set by whoever runs a job, in the job's own
# asyncio task (a context variable, so every wrapper of the client passes it on untouched).
SUBMIT_SENT: ContextVar[Callable[[], None] | None] = ContextVar("submit_sent", default=None)

MAX_API_BODY_BYTES: Final = 4 * 1024 * 1024  # task-result replies are a few KiB
DOWNLOAD_CHUNK_BYTES: Final = 64 * 1024
# A just-created task may briefly be unknown to task-result (UNCONFIRMED): forgive one 404.
TASK_NOT_FOUND_RETRIES: Final = 1
MAX_IMAGE_REDIRECTS: Final = 3
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
# A download's speed is judged only after this long, so a slow first round trip is forgiven.
SLOW_DOWNLOAD_GRACE_SECONDS: Final = 5.0

_AUTH_REASONS: Final = frozenset({
    "INVALID_API_KEY", "MISSING_API_KEY", "FAILED_TO_AUTH", "BILLING_AUTH_FAILED",
    "API_NOT_ALLOWED", "FEATURE_NOT_ALLOWED", "NEED_REAL_NAME_VERIFY",
})
_BALANCE_REASONS: Final = frozenset({"BILLING_BALANCE_NOT_ENOUGH", "NOT_ENOUGH_BALANCE"})
_EXPIRED_IMAGE_STATUSES: Final = frozenset({403, 404, 410})
_GENERIC_BINARY_TYPES: Final = frozenset({
    "", "application/octet-stream", "binary/octet-stream",
})

T = TypeVar("T")


@dataclass
class ClientStats:
    """Counters for benchmarks and tests. Requests are counted per HTTP attempt."""

    submits: int = 0
    polls: int = 0
    downloads: int = 0
    retries: int = 0
    submit_wait_seconds: float = 0.0


class _BodyTooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


class _BodyTooSlow(Exception):
    def __init__(self, size: int, seconds: float) -> None:
        self.size = size
        self.seconds = seconds


class NovitaClient:
    def __init__(
        self,
        api_key: Secret,
        base_url: str,
        *,
        request_timeout: float = 60.0,
        max_download_bytes: int = 25 * 1024 * 1024,
        max_submits_per_minute: int = 20,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 (frozen, so sharing is safe)
        clock: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        user_agent: str = USER_AGENT,
        max_connections: int = 1000,
        max_connections_per_host: int = 256,
        trusted_image_hosts: Iterable[str] = (),
        image_read_timeout: float = 15.0,
        image_min_bytes_per_second: int = 32 * 1024,
        slow_download_grace: float = SLOW_DOWNLOAD_GRACE_SECONDS,
        image_checker: ImageChecker | None = None,
        resolver: AbstractResolver | None = None,
        edit_image_mode: EditImageMode = EditImageMode.AUTO,
    ) -> None:
        """`resolver` replaces the system resolver under the download guard (tests use it to
        make names resolve to chosen addresses without real DNS)."""
        if request_timeout <= 0:
            raise ValueError("request_timeout must be positive")
        if max_download_bytes <= 0:
            raise ValueError("max_download_bytes must be positive")
        if image_read_timeout <= 0 or image_min_bytes_per_second < 0:
            raise ValueError("image_read_timeout must be positive, the minimum rate not negative")
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.request_timeout = request_timeout
        self.max_download_bytes = max_download_bytes
        self.retry = retry
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._user_agent = user_agent
        self._max_connections = max_connections
        self._max_connections_per_host = max_connections_per_host
        self.submit_limiter = SubmitRateLimiter(max_submits_per_minute, clock=clock, sleep=sleep)
        self.stats = ClientStats()
        self.download_guard = DownloadGuard(trusted_image_hosts)
        self.image_read_timeout = image_read_timeout
        self.image_min_bytes_per_second = image_min_bytes_per_second
        self.slow_download_grace = slow_download_grace
        self.image_checker = image_checker or ImageChecker()
        self._inner_resolver = resolver
        self.edits = EditSubmitter(edit_image_mode)
        self._http: aiohttp.ClientSession | None = None
        self._downloads_http: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None
        self._closed = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        retry: RetryPolicy | None = None,
        clock: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> NovitaClient:
        """Build from validated settings; raises `SettingsError` if the key is missing."""
        settings.require("novita_api_key")
        assert settings.novita_api_key is not None
        return cls(
            settings.novita_api_key,
            settings.novita_base_url,
            request_timeout=settings.request_timeout,
            max_download_bytes=settings.max_download_bytes,
            max_submits_per_minute=settings.max_submits_per_minute,
            trusted_image_hosts=settings.trusted_image_hosts,
            image_read_timeout=settings.image_read_timeout,
            image_min_bytes_per_second=settings.image_min_bytes_per_second,
            edit_image_mode=EditImageMode(settings.novita_edit_image_mode),
            retry=retry or RetryPolicy(),
            clock=clock,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        return f"NovitaClient(base_url={self.base_url!r}, api_key={self._api_key!r})"

    # --- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session (if one was opened). Safe to call more than once."""
        self._closed = True
        http, self._http = self._http, None
        downloads, self._downloads_http = self._downloads_http, None
        resolver, self._resolver = self._resolver, None
        for session in (http, downloads):
            if session is not None:
                await session.close()
        if resolver is not None:  # the connector closes only resolvers it created itself
            await resolver.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def _session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("NovitaClient is closed")
        if self._http is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=self._max_connections_per_host,
                ttl_dns_cache=300,
            )
            # sock_connect (not connect) so waiting for a pooled connection counts only
            # against the total; a slow TCP handshake still fails fast and is safe to retry.
            timeout = aiohttp.ClientTimeout(
                total=self.request_timeout, sock_connect=min(10.0, self.request_timeout)
            )
            self._http = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                headers={"User-Agent": self._user_agent},
                raise_for_status=False,
            )
        return self._http

    def _downloads_session(self) -> aiohttp.ClientSession:
        """Image downloads only: guarded resolver, no DNS cache (each connection resolves and
        is checked afresh), a read timeout between bytes, and no redirects followed by aiohttp."""
        if self._closed:
            raise RuntimeError("NovitaClient is closed")
        if self._downloads_http is None:
            self._resolver = GuardedResolver(self.download_guard, self._inner_resolver)
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=self._max_connections_per_host,
                resolver=self._resolver,
                use_dns_cache=False,
            )
            timeout = aiohttp.ClientTimeout(
                total=self.request_timeout,
                sock_connect=min(10.0, self.request_timeout),
                sock_read=self.image_read_timeout,
            )
            self._downloads_http = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                headers={"User-Agent": self._user_agent},
                raise_for_status=False,
                trust_env=False,  # a proxy would connect on our behalf, past the guard
            )
        return self._downloads_http

    # --- public API ------------------------------------------------------------------------

    async def submit(self, prompt: str, size: ImageSize) -> str:
        """Create a txt2img task and return its task_id. Waits locally under the rate limit."""
        return await self.create_task(SUBMIT_PATH, {"prompt": prompt, "size": size.wire})

    async def submit_edit(
        self,
        instruction: str,
        image: EditSource,
        *,
        seed: int | None = None,
        output_format: str = "jpeg",
    ) -> str:
        """Create a Qwen-Image-Edit task and return its task_id (image form: `bot.novita.edit`)."""
        return await self.edits.submit(
            self, instruction, image, seed=seed, output_format=output_format
        )

    async def create_task(
        self, path: str, body: Mapping[str, Any], *, operation: str = "submit"
    ) -> str:
        """POST `body` to one of Novita's async task endpoints and return the task_id."""

        async def attempt() -> str:
            self.stats.submit_wait_seconds += await self.submit_limiter.acquire()
            self.stats.submits += 1
            if (sent := SUBMIT_SENT.get()) is not None:
                sent()
            try:
                status, headers, raw = await self._call_novita(
                    "POST", path, operation=operation, json_body=body
                )
                if not 200 <= status < 300:
                    raise self._error_from_response(status, headers, raw, operation, None)
                return task_id_from_submit(raw)
            except RateLimitedError as exc:
                if exc.retry_after is not None:  # let every other submitter wait too, but
                    # never longer than we would wait ourselves: jobs have deadlines
                    self.submit_limiter.hold_off(
                        min(exc.retry_after, self.retry.max_retry_after)
                    )
                raise

        def may_retry(exc: NovitaError) -> bool:
            return isinstance(exc, RateLimitedError | ConnectionFailedError)

        return await self._with_retries(operation, None, attempt, may_retry)

    async def get_task(self, task_id: str) -> TaskResult:
        """One task-result lookup, retrying transient failures within `RetryPolicy`."""
        not_found_seen = 0

        async def attempt() -> TaskResult:
            self.stats.polls += 1
            status, headers, raw = await self._call_novita(
                "GET", TASK_RESULT_PATH, operation="poll", params={"task_id": task_id},
                task_id=task_id,
            )
            if not 200 <= status < 300:
                raise self._error_from_response(status, headers, raw, "poll", task_id)
            return task_result_from(raw, task_id)

        def may_retry(exc: NovitaError) -> bool:
            nonlocal not_found_seen
            if isinstance(exc, TaskNotFoundError):
                not_found_seen += 1
                return not_found_seen <= TASK_NOT_FOUND_RETRIES
            # The engine counts unreadable replies across polls; retrying here would hide them.
            return exc.retryable and not isinstance(exc, MalformedResponseError)

        return await self._with_retries("poll", task_id, attempt, may_retry)

    async def download(self, image: GeneratedImage, *, task_id: str | None = None) -> bytes:
        """Fetch the image (streamed, capped, guarded) and return its bytes once they decode.

        Never sends the Novita key to the host. Redirect, scheme and address refusals and
        undecodable images are final; transient host errors are retried.
        """
        try:
            url = URL(image.url, encoded=True)
        except (TypeError, ValueError):
            raise ImageUnavailableError("image URL is malformed", task_id=task_id) from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ImageUnavailableError("image URL is not an http(s) link", task_id=task_id)

        async def attempt() -> bytes:
            self.stats.downloads += 1
            return await self._follow_redirects(url, task_id)

        data = await self._with_retries("download", task_id, attempt, lambda exc: exc.retryable)
        await self.image_checker.check(data, task_id=task_id)
        return data

    # --- plumbing --------------------------------------------------------------------------

    async def _with_retries(
        self,
        operation: str,
        task_id: str | None,
        attempt: Callable[[], Awaitable[T]],
        may_retry: Callable[[NovitaError], bool],
    ) -> T:
        retry_number = 0
        while True:
            try:
                return await attempt()
            except NovitaError as exc:
                retry_number += 1
                retry_after = exc.retry_after if isinstance(exc, RateLimitedError) else None
                if (
                    retry_number >= self.retry.attempts
                    or not may_retry(exc)
                    or not self.retry.allows_retry_after(retry_after)
                ):
                    raise
                delay = self.retry.delay(retry_number, retry_after, self._rng)
                log.debug(
                    "novita %s: retry %d/%d in %.2fs (task %s) after %s: %s",
                    operation, retry_number, self.retry.attempts - 1, delay,
                    task_id or "-", type(exc).__name__, exc,
                )
                self.stats.retries += 1
                await self._sleep(delay)

    async def _call_novita(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        task_id: str | None = None,
    ) -> tuple[int, CIMultiDictProxy[str], bytes]:
        headers = {
            "Authorization": f"Bearer {self._api_key.reveal()}",
            "Accept": "application/json",
        }
        with transport_errors(operation, task_id):
            async with self._session().request(
                method, self.base_url + path, params=params, json=json_body, headers=headers,
                allow_redirects=False,  # the key goes to base_url and nowhere else
            ) as resp:
                try:
                    raw = await _read_at_most(resp, MAX_API_BODY_BYTES)
                except _BodyTooLarge:
                    raise MalformedResponseError(
                        f"{operation} reply is larger than {MAX_API_BODY_BYTES} bytes",
                        status=resp.status, task_id=task_id,
                    ) from None
                return resp.status, resp.headers, raw

    def _error_from_response(
        self,
        status: int,
        headers: Mapping[str, str],
        raw: bytes,
        operation: str,
        task_id: str | None,
    ) -> NovitaError:
        """Map Novita's `{code, reason, message, metadata}` (or an HTML/empty body) to a type."""
        reason, detail = parse_error_body(raw, headers.get("Content-Type", ""))
        message = f"{operation} failed: {excerpt(detail, self._api_key)}"
        common: dict[str, Any] = {"status": status, "reason": reason, "task_id": task_id}
        if status == 429 or reason == "RATE_LIMIT_EXCEEDED":
            retry_after = parse_retry_after(headers.get("Retry-After"))
            return RateLimitedError(message, retry_after=retry_after, **common)
        if reason in _BALANCE_REASONS:
            return InsufficientBalanceError(message, **common)
        if reason in _AUTH_REASONS:
            return AuthenticationError(message, **common)
        if reason == "ILLEGAL_PROMPT":
            return PromptRefusedError(message, **common)
        if reason == "TASK_NOT_FOUND":
            return TaskNotFoundError(message, **common)
        if status >= 500 or status == 408:
            return UpstreamUnavailableError(message, **common)
        if status in (401, 403):
            return AuthenticationError(message, **common)
        return BadRequestError(message, **common)

    async def _follow_redirects(self, url: URL, task_id: str | None) -> bytes:
        """GET `url`, following up to `MAX_IMAGE_REDIRECTS` redirects, checking every hop."""
        for _ in range(MAX_IMAGE_REDIRECTS + 1):
            self.download_guard.check_url(url, task_id=task_id)
            with transport_errors("download", task_id):
                try:
                    async with self._downloads_session().get(
                        url, headers={"Accept": "image/*"}, allow_redirects=False
                    ) as resp:
                        if resp.status not in _REDIRECT_STATUSES:
                            return await self._image_bytes(resp, task_id)
                        url = redirect_target(url, resp.headers.get("Location"), task_id)
                except aiohttp.ClientConnectorError as exc:
                    if isinstance(exc.os_error, BlockedAddressError):
                        blocked = exc.os_error  # refused by the resolver: nothing was sent
                        raise ImageHostRefusedError(
                            f"image host {blocked.host} resolves to {blocked.address}, "
                            "which is not a public address",
                            task_id=task_id,
                        ) from None
                    raise
        raise ImageHostRefusedError(
            f"image host redirected more than {MAX_IMAGE_REDIRECTS} times", task_id=task_id
        )

    async def _image_bytes(self, resp: aiohttp.ClientResponse, task_id: str | None) -> bytes:
        status = resp.status
        if status in _EXPIRED_IMAGE_STATUSES:
            raise ImageUnavailableError(
                "image link has expired or the image is gone", status=status, task_id=task_id
            )
        if status == 429:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            raise RateLimitedError(
                "image host is throttling", retry_after=retry_after, status=status,
                task_id=task_id,
            )
        if status >= 500 or status == 408:
            raise UpstreamUnavailableError(
                "image host is unavailable", status=status, task_id=task_id
            )
        if not 200 <= status < 300:
            raise ImageUnavailableError(
                "image host refused the download", status=status, task_id=task_id
            )
        content_type = resp.content_type.lower()  # aiohttp defaults a missing one to octet
        if not content_type.startswith("image/") and content_type not in _GENERIC_BINARY_TYPES:
            raise ImageUnavailableError(
                f"image host sent {content_type!r}, not an image", status=status,
                task_id=task_id,
            )
        try:
            data = await _read_at_most(
                resp, self.max_download_bytes, min_rate=self.image_min_bytes_per_second,
                grace=self.slow_download_grace, clock=self._clock,
            )
        except _BodyTooLarge as exc:
            raise ImageTooLargeError(
                f"image is larger than the {self.max_download_bytes} byte limit "
                f"({exc.size} bytes or more)", status=status, task_id=task_id,
            ) from None
        except _BodyTooSlow as exc:
            raise ImageHostTooSlowError(
                f"image host sent {exc.size} bytes in {exc.seconds:.1f} s, under the "
                f"{self.image_min_bytes_per_second} bytes/s minimum", status=status,
                task_id=task_id,
            ) from None
        if not data:
            raise ImageUnavailableError("image host sent an empty body", status=status,
                                        task_id=task_id)
        if not content_type.startswith("image/") and not looks_like_image(data):
            raise ImageUnavailableError(
                "image host sent bytes that are not a known image format", status=status,
                task_id=task_id,
            )
        return data


async def _read_at_most(
    resp: aiohttp.ClientResponse,
    cap: int,
    *,
    min_rate: float = 0.0,
    grace: float = 0.0,
    clock: Monotonic = time.monotonic,
) -> bytes:
    """Read the body, refusing (by Content-Length first, then by counting) more than `cap`.

    With `min_rate`, also give up once the average rate (bytes/s) falls below it, judged from
    `grace` seconds on: a host trickling a byte at a time is dropped long before the job deadline
    (the session's read timeout only catches a host that sends nothing at all).
    """
    declared = content_length(resp.headers.get("Content-Length"))
    if declared is not None and declared > cap:
        raise _BodyTooLarge(declared)
    chunks: list[bytes] = []
    total = 0
    started = clock()
    async for chunk in resp.content.iter_chunked(DOWNLOAD_CHUNK_BYTES):
        total += len(chunk)
        if total > cap:
            raise _BodyTooLarge(total)
        chunks.append(chunk)
        elapsed = clock() - started
        if min_rate > 0 and elapsed > grace and total < min_rate * elapsed:
            raise _BodyTooSlow(total, elapsed)
    return b"".join(chunks)
