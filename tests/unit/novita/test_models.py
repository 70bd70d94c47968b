"""TaskResult.from_json against the documented examples and the shapes seen in the wild."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.novita.models import TaskResult, TaskStatus
from tests.unit.novita.conftest import WIRE_STATUSES

# The Qwen-Image example reply from Novita's docs (docs/novita-api.md §2.1).
QWEN_EXAMPLE: dict[str, Any] = {
    "extra": {"has_nsfw_contents": []},
    "task": {
        "task_id": "b7a1f3de-1111-4222-8333-944455556666",
        "task_type": "QWEN_IMAGE_TEXT_TO_IMAGE",
        "status": "TASK_STATUS_SUCCEED",
        "reason": "",
        "eta": 0,
        "progress_percent": 0,
    },
    "images": [{
        "image_url": "https://d2p7pge43lyniu.cloudfront.net/output/abc.jpeg",
        "image_url_ttl": "0",
        "image_type": "jpeg",
        "nsfw_detection_result": None,
    }],
    "videos": [],
    "audios": [],
}


def example(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(QWEN_EXAMPLE)
    data.update(changes)
    return data


def test_qwen_example_parses() -> None:
    result = TaskResult.from_json(QWEN_EXAMPLE)
    assert result.task_id == "b7a1f3de-1111-4222-8333-944455556666"
    assert result.status is TaskStatus.SUCCEED
    assert result.task_type == "QWEN_IMAGE_TEXT_TO_IMAGE"
    assert result.reason == ""
    assert result.eta_seconds == 0.0
    assert result.progress_percent == 0.0
    (image,) = result.images
    assert image.url.endswith("/abc.jpeg")
    assert image.url_ttl_seconds == 0
    assert image.image_type == "jpeg"
    assert image.nsfw is None
    assert not result.nsfw_flagged


@pytest.mark.parametrize(("wire", "status", "terminal"), WIRE_STATUSES)
def test_statuses(wire: str, status: TaskStatus, terminal: bool) -> None:
    data = example()
    data["task"]["status"] = wire
    result = TaskResult.from_json(data)
    assert result.status is status
    assert result.raw_status == wire
    assert result.status.is_terminal is terminal


@pytest.mark.parametrize("raw", [None, 3, {"x": 1}])
def test_non_string_status_is_unknown_with_empty_raw(raw: object) -> None:
    data = example()
    data["task"]["status"] = raw
    result = TaskResult.from_json(data)
    assert result.status is TaskStatus.UNKNOWN
    assert result.raw_status == ""


def test_missing_status_is_unknown() -> None:
    data = example()
    del data["task"]["status"]
    assert TaskResult.from_json(data).status is TaskStatus.UNKNOWN


def test_failed_reason_is_kept() -> None:
    data = example(images=[])
    data["task"].update(status="TASK_STATUS_FAILED", reason="content policy")
    result = TaskResult.from_json(data)
    assert result.reason == "content policy"
    assert result.images == ()


@pytest.mark.parametrize(("ttl", "seconds"), [("0", 0), ("3600", 3600), (3600, 3600),
                                              (None, 0), ("", 0), ("soon", 0), (7.9, 7)])
def test_image_url_ttl_as_string_or_int(ttl: object, seconds: int) -> None:
    data = example()
    data["images"][0]["image_url_ttl"] = ttl
    assert TaskResult.from_json(data).images[0].url_ttl_seconds == seconds


@pytest.mark.parametrize(
    ("raw", "flagged", "confidence"),
    [
        (None, None, None),
        ({}, None, None),
        ({"valid": False, "confidence": 0.1}, False, 0.1),
        ({"valid": True, "confidence": "0.93"}, True, 0.93),
        ({"valid": True}, True, None),
        ("garbage", None, None),
    ],
)
def test_nsfw_detection_result_shapes(raw: object, flagged: bool | None,
                                      confidence: float | None) -> None:
    data = example()
    data["images"][0]["nsfw_detection_result"] = raw
    result = TaskResult.from_json(data)
    nsfw = result.images[0].nsfw
    if flagged is None:
        assert nsfw is None
        assert not result.nsfw_flagged
    else:
        assert nsfw is not None
        assert nsfw.flagged is flagged
        assert nsfw.confidence == (None if confidence is None else pytest.approx(confidence))
        assert result.nsfw_flagged is flagged


@pytest.mark.parametrize(
    ("flags", "flagged"),
    [([], False), ([False], False), ([False, True], True), (True, True), (None, False),
     ("yes", True)],
)
def test_has_nsfw_contents(flags: object, flagged: bool) -> None:
    data = example(extra={"has_nsfw_contents": flags})
    assert TaskResult.from_json(data).nsfw_flagged is flagged


def test_extra_fields_everywhere_are_tolerated() -> None:
    data = example(extra="not a mapping", brand_new={"a": 1}, videos=None)
    data["task"]["queue_position"] = 4
    data["images"][0]["width"] = 1024
    data["images"].append("not a mapping")  # skipped, not fatal
    result = TaskResult.from_json(data)
    assert len(result.images) == 1
    assert not result.nsfw_flagged


def test_numbers_as_strings_and_clamped_progress() -> None:
    data = example()
    data["task"].update(eta="12.5", progress_percent="250")
    result = TaskResult.from_json(data)
    assert result.eta_seconds == 12.5
    assert result.progress_percent == 100.0
    data["task"].update(eta="nan", progress_percent="-5")
    result = TaskResult.from_json(data)
    assert result.eta_seconds == 0.0
    assert result.progress_percent == 0.0


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", float("nan")])
def test_non_finite_numbers_become_zero(value: object) -> None:
    data = example()
    data["task"].update(eta=value, progress_percent=value)
    result = TaskResult.from_json(data)
    assert result.eta_seconds == 0.0
    assert result.progress_percent == 0.0


def test_task_id_falls_back_to_the_one_asked_for() -> None:
    data = example()
    del data["task"]["task_id"]
    assert TaskResult.from_json(data, task_id="asked").task_id == "asked"


def test_image_type_defaults_to_jpeg() -> None:
    data = example()
    del data["images"][0]["image_type"]
    assert TaskResult.from_json(data).images[0].image_type == "jpeg"


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"task": None},
        {"task": "TASK_STATUS_SUCCEED"},
        {"task": {}, "images": {"image_url": "x"}},
        {"task": {}, "images": [{"image_url": None}]},
        {"task": {}, "images": [{"no_url": 1}]},
    ],
)
def test_wrong_shapes_raise_value_error(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TaskResult.from_json(data)


def test_non_mapping_raises_value_error() -> None:
    with pytest.raises(ValueError):
        TaskResult.from_json([])  # type: ignore[arg-type]


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=12,
)


@given(
    task=st.dictionaries(
        st.sampled_from(["task_id", "status", "reason", "eta", "progress_percent", "task_type",
                         "other"]),
        JSONISH, max_size=7,
    ),
    images=JSONISH,
    extra=JSONISH,
)
def test_arbitrary_json_either_parses_or_raises_value_error(
    task: dict[str, Any], images: object, extra: object
) -> None:
    """The client turns ValueError/TypeError into MalformedResponseError; nothing else may leak."""
    try:
        result = TaskResult.from_json({"task": task, "images": images, "extra": extra})
    except (ValueError, TypeError):
        return
    assert 0.0 <= result.progress_percent <= 100.0
    assert isinstance(result.status, TaskStatus)
