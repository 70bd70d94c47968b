"""Typed errors for everything that can go wrong between a prompt and a downloaded image.

Callers decide what to tell people from the *type* (see `bot.wording.messages`); the
attributes carry what a message or a retry needs. Nothing here ever contains the API key.
"""

from __future__ import annotations


class NovitaError(Exception):
    """Base class. `retryable` says whether trying the same call again may succeed."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        task_id: str | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.reason = reason
        self.task_id = task_id
        super().__init__(message)

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.reason:
            parts.append(self.reason)
        if self.task_id:
            parts.append(f"task {self.task_id}")
        return " | ".join(parts)


class BadRequestError(NovitaError):
    """400 INVALID_REQUEST_BODY and other permanent 4xx we did not expect."""


class PromptRefusedError(NovitaError):
    """400 ILLEGAL_PROMPT: Novita's moderation refused the prompt."""


class EditImageRejectedError(BadRequestError):
    """Novita refused the image to edit (INVALID_IMAGE_FORMAT, INVALID_IMAGE_SIZE,
    IMAGE_FILE_EXCEEDS_MAX_SIZE, IMAGE_EXCEEDS_MAX_RESOLUTION, or an INVALID_REQUEST_BODY about
    the image) in every form the client tried (see `bot.novita.edit`)."""


class ImageContentRefusedError(PromptRefusedError):
    """400 ILLEGAL_IMAGE_CONTENT: Novita's moderation refused the image to edit."""


class AuthenticationError(NovitaError):
    """INVALID_API_KEY (403), MISSING_API_KEY (400), other 401/403: the bot is misconfigured."""


class InsufficientBalanceError(NovitaError):
    """400 BILLING_BALANCE_NOT_ENOUGH: the Novita account needs topping up."""


class TaskNotFoundError(NovitaError):
    """404 TASK_NOT_FOUND on task-result."""


class RateLimitedError(NovitaError):
    """429 RATE_LIMIT_EXCEEDED. `retry_after` is seconds from the Retry-After header, if any."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class UpstreamUnavailableError(NovitaError):
    """5xx (GET_RESULT_FAILED, CREATE_TASK_FAILED, gateway HTML…), connection errors, timeouts."""

    retryable = True


class ConnectionFailedError(UpstreamUnavailableError):
    """Could not connect to Novita at all, so the request was never sent (safe to resubmit)."""


class MalformedResponseError(NovitaError):
    """A 2xx reply that is not the JSON shape the contract promises."""

    retryable = True


class TaskFailedError(NovitaError):
    """The task ended in TASK_STATUS_FAILED; `reason` holds Novita's explanation."""


class TaskStoppedError(TaskFailedError):
    """The task reported a status we do not know that reads as final (`TASK_STATUS_CANCELED`,
    `…_EXPIRED`, …); `reason` holds that status."""


class UnreadableRepliesError(NovitaError):
    """Several task-result replies in a row could not be read, so the job stops early."""


class JobTimeoutError(NovitaError):
    """Our own overall deadline passed before the image was ready."""


class ImageUnavailableError(NovitaError):
    """The result image could not be fetched: expired URL (403/404), wrong type, empty list."""


class ImageTooLargeError(ImageUnavailableError):
    """The image is over the download cap (`MAX_IMAGE_DOWNLOAD_MB`)."""


class ImageHostRefusedError(ImageUnavailableError):
    """The image URL, or a redirect from it, leads somewhere the bot does not fetch from: a
    loopback, private, link-local or multicast address, a scheme other than http(s), or more
    redirects than allowed. Never retried."""


class ImageHostTooSlowError(ImageUnavailableError):
    """The image host sent the image slower than `IMAGE_MIN_BYTES_PER_SECOND`."""


class InvalidImageError(ImageUnavailableError):
    """The downloaded bytes are not a whole image we can show: truncated, not an image at all,
    or declaring more pixels than Qwen-Image ever makes (a decompression bomb)."""


class JobCancelledError(NovitaError):
    """Someone cancelled the job. (Novita has no cancel call: a submitted task is still billed.)"""
