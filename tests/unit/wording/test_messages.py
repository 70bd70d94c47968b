from __future__ import annotations

import pytest

from bot.imaging import InvalidPromptError, InvalidSizeError, PromptProblem, SizeProblem
from bot.novita import errors
from bot.novita.image_check import MAX_IMAGE_PIXELS
from bot.uploads import MAX_UPLOAD_BYTES, InvalidUploadError, UploadProblem
from bot.wording.messages import MISCONFIGURED, describe_error, describe_with_id


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (InvalidSizeError("9*9", SizeProblem.SIDE_OUT_OF_RANGE), "256 and 1536"),
        (InvalidPromptError(PromptProblem.EMPTY), "empty"),
        (InvalidPromptError(PromptProblem.TOO_LONG, 2345), "2345 characters long"),
        (InvalidPromptError(PromptProblem.NOTHING_VISIBLE, 1), "no visible characters"),
        (errors.AuthenticationError("bad key", status=403), MISCONFIGURED),
        (errors.InsufficientBalanceError("no money", status=400), "out of credit"),
        (errors.PromptRefusedError("no", status=400), "refused"),
        (errors.RateLimitedError("slow down", status=429), "busy"),
        (errors.TaskFailedError("failed", reason="GPU on fire"), "GPU on fire"),
        (errors.JobTimeoutError("late"), "too long"),
        (errors.ImageUnavailableError("gone", status=403), "expired"),
        (errors.UpstreamUnavailableError("502"), "trouble"),
    ],
)
def test_known_errors_have_friendly_sentences(exc: Exception, expected: str) -> None:
    text = describe_error(exc)
    assert text is not None and expected in text


def test_unknown_errors_quote_the_error_id_and_nothing_else() -> None:
    assert describe_error(KeyError("x")) is None
    text = describe_with_id(KeyError("secret-detail"), "abcd1234")
    assert "abcd1234" in text and "secret-detail" not in text


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (InvalidUploadError(UploadProblem.UNSUPPORTED_TYPE), "send a PNG, JPEG or WebP image"),
        (InvalidUploadError(UploadProblem.EMPTY), "empty"),
        (InvalidUploadError(UploadProblem.TOO_LARGE, MAX_UPLOAD_BYTES), "10 MB at most"),
        (InvalidUploadError(UploadProblem.TOO_MANY_PIXELS, MAX_IMAGE_PIXELS), "4 megapixels"),
        (InvalidUploadError(UploadProblem.UNREADABLE), "damaged"),
        (errors.EditImageRejectedError("no", status=400, reason="INVALID_IMAGE_FORMAT"),
         "couldn't read the image to edit (INVALID_IMAGE_FORMAT)"),
        (errors.ImageContentRefusedError("no", status=400), "content filter"),
    ],
)
def test_edit_errors_have_friendly_sentences(exc: Exception, expected: str) -> None:
    text = describe_error(exc)
    assert text is not None and expected in text
