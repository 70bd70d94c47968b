"""The one place where errors become short, friendly sentences for people.

Code below raises typed errors; the edges (Discord cog, CLI) call `describe_error` to say what
happened. Unknown errors get a generic sentence plus an error id that also appears in the log.
"""

from __future__ import annotations

import secrets
from typing import Final

from bot.imaging import (
    MAX_PROMPT_CHARS,
    MAX_SIDE,
    MIN_SIDE,
    InvalidPromptError,
    InvalidSizeError,
    PromptProblem,
    SizeProblem,
)
from bot.novita import errors as novita
from bot.storage.reliability.journal_writes import JournalUnavailableError
from bot.uploads import InvalidUploadError, UploadProblem

_SIZE_PROBLEMS: Final = {
    SizeProblem.SIDE_OUT_OF_RANGE: f"each side must be between {MIN_SIDE} and {MAX_SIDE} pixels",
    SizeProblem.NOT_WIDTH_BY_HEIGHT: "write it as width*height, for example 1024*1536",
}
DATABASE_UNAVAILABLE = "The bot's database is unavailable, try again in a minute."
JOURNAL_UNAVAILABLE: Final = (
    "The bot's database is unavailable, so this was stopped before it was sent (it doesn't "
    "count). Please try again in a minute."
)
MISCONFIGURED = "The bot's image service is misconfigured. Please tell a server admin."


def describe_upload(exc: InvalidUploadError) -> str:
    """Why an image given to `/imagine-edit` was refused, naming the limit it broke."""
    match exc.problem:
        case UploadProblem.UNSUPPORTED_TYPE:
            return "That file can't be edited: send a PNG, JPEG or WebP image."
        case UploadProblem.EMPTY:
            return "That file is empty."
        case UploadProblem.TOO_LARGE:
            limit = f" ({_megabytes(exc.limit)} MB at most)" if exc.limit else ""
            return f"That image is too large to edit{limit}."
        case UploadProblem.TOO_MANY_PIXELS:
            limit = f" ({_megapixels(exc.limit)} megapixels at most)" if exc.limit else ""
            return f"That image has too many pixels to edit{limit}."
        case UploadProblem.UNREADABLE:
            return "That image looks damaged and can't be read. Try saving it again."
    return "That image can't be edited."


def _megabytes(limit: int) -> str:
    return f"{limit / (1024 * 1024):g}"


def _megapixels(limit: int) -> str:
    return f"{limit / (1024 * 1024):g}"


def new_error_id() -> str:
    """A short id people can quote to an admin; the same id is written to the log."""
    return secrets.token_hex(4)


def describe_error(exc: BaseException) -> str | None:
    """A friendly one-liner for a known error, or None when the error is unexpected."""
    match exc:
        case InvalidUploadError():
            return describe_upload(exc)
        case JournalUnavailableError():
            return JOURNAL_UNAVAILABLE
        case InvalidSizeError():
            return f"That size doesn't work: {_SIZE_PROBLEMS[exc.problem]}."
        case InvalidPromptError() if exc.problem is PromptProblem.TOO_LONG:
            return (
                f"That prompt doesn't work: the prompt is {exc.length} characters long; "
                f"the limit is {MAX_PROMPT_CHARS}."
            )
        case InvalidPromptError() if exc.problem is PromptProblem.NOTHING_VISIBLE:
            return (
                "That prompt doesn't work: it has no visible characters "
                "(only spaces or invisible ones such as zero-width spaces)."
            )
        case InvalidPromptError():
            return "That prompt doesn't work: the prompt is empty."
        case novita.ImageContentRefusedError():
            return "The image service's content filter refused this image, so it can't be edited."
        case novita.PromptRefusedError():
            return "The image service refused this prompt as inappropriate. Try rewording it."
        case novita.AuthenticationError():
            return MISCONFIGURED
        case novita.InsufficientBalanceError():
            return "The bot's image service account is out of credit. Please tell a server admin."
        case novita.EditImageRejectedError():
            reason = f" ({exc.reason})" if exc.reason else ""
            return f"The image service couldn't read the image to edit{reason}."
        case novita.BadRequestError():
            return "The image service rejected the request as invalid."
        case novita.RateLimitedError():
            return "The image service is busy right now. Please try again in a minute."
        case novita.TaskStoppedError():
            return "The image service stopped this job before it finished. Please try again."
        case novita.TaskFailedError():
            reason = (exc.reason or "").strip()
            return (
                f"The image service could not make this image: {reason}"
                if reason
                else ("The image service could not make this image.")
            )
        case novita.JobTimeoutError():
            return "This took too long and was stopped. Please try again."
        case novita.ImageTooLargeError():
            return "The finished image was too large to download."
        case novita.InvalidImageError():
            return "The image service sent back an image that could not be read. Please try again."
        case novita.ImageHostRefusedError():
            return (
                "The finished image was at an address the bot does not fetch from, "
                "so nothing was posted. Please try again."
            )
        case novita.ImageHostTooSlowError():
            return "The image host was too slow to send the finished image. Please try again."
        case novita.ImageUnavailableError():
            return "The finished image could not be fetched (it may have expired). Please retry."
        case novita.JobCancelledError():
            return "Cancelled."
        case novita.UnreadableRepliesError():
            return (
                "The image service kept sending replies the bot could not read. "
                "Please try again shortly."
            )
        case novita.TaskNotFoundError():
            return "The image service lost track of this job. Please try again."
        case novita.UpstreamUnavailableError() | novita.MalformedResponseError():
            return "The image service is having trouble right now. Please try again shortly."
    return None


def describe_with_id(exc: BaseException, error_id: str) -> str:
    """Like `describe_error`, falling back to a generic sentence that quotes `error_id`."""
    known = describe_error(exc)
    if known is not None:
        return known
    return f"Something went wrong on our side (error id `{error_id}`). Please try again."
