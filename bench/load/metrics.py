"""Turn one run's raw records (fake Discord, mock Novita, the bot's own stats) into figures.

All times are `time.monotonic()` readings from three processes on one machine; on Linux that
clock (CLOCK_MONOTONIC) is system-wide, so they can be subtracted across processes.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Final

BUSY_MARKER: Final = "very busy"
JSON = dict[str, Any]


def percentile(values: list[float], share: float) -> float | None:
    """Linear-interpolated percentile (`share` in 0..1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def refusal_reason(text: str) -> str:
    """`busy` for the overload refusal, else the refusal's first sentence (shortened)."""
    if BUSY_MARKER in text.lower():
        return "busy"
    first = text.split(".")[0].strip()
    return first[:60] or "(no text)"


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def _s(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def summarize(
    fake_report: JSON,
    mock_tasks: list[JSON],
    bot_stats: JSON | None,
    *,
    time_scale: float,
    finished_at: float,
) -> JSON:
    """The figures for one run (see bench/README.md for what each one means)."""
    interactions: list[JSON] = fake_report["interactions"]
    tasks_by_prompt = {task["prompt"]: task for task in mock_tasks}
    sent = [i["sent_at"] for i in interactions]
    first_sent = min(sent) if sent else finished_at
    acks = [i["acknowledged_at"] - i["sent_at"] for i in interactions if i["acknowledged_at"]]
    admitted = [
        i for i in interactions
        if i["response_type"] == 5 and not i["ephemeral"] and i["outcome"] != "refused"
    ]
    refused = [i for i in interactions if i["outcome"] == "refused"]
    outcomes = Counter(i["outcome"] for i in admitted)
    refusals = Counter(refusal_reason(i["text"]) for i in refused)

    detection: list[float] = []
    overhead: list[float] = []
    to_download: list[float] = []
    download_to_upload: list[float] = []
    upload: list[float] = []
    polls: list[int] = []
    sizes: list[int] = []
    for interaction in admitted:
        task = tasks_by_prompt.get(interaction["prompt"])
        if task is None:
            continue
        polls.append(len(task["poll_times"]))
        if interaction["outcome"] != "delivered" or task["detected_at"] is None:
            continue
        if task["succeeded_at"] is not None:
            detection.append(task["detected_at"] - task["succeeded_at"])
        started, delivered = interaction["upload_started_at"], interaction["delivered_at"]
        if task["download_times"] and started is not None:
            download_start, download_end = task["download_times"][0]
            # From the poll that answered SUCCEED to the upload reaching Discord, minus the time
            # the mock spent sending the image (the bot's own overhead).
            overhead.append(started - task["detected_at"] - (download_end - download_start))
            to_download.append(download_start - task["detected_at"])
            download_to_upload.append(started - download_end)
            if delivered is not None:
                upload.append(delivered - started)
        if interaction["attachment"]:
            sizes.append(int(interaction["attachment"]["size"]))

    admitted_acks = [i["acknowledged_at"] for i in admitted]
    admission_span = (max(admitted_acks) - first_sent) if admitted_acks else 0.0
    lag = _lag_in_window(bot_stats, first_sent, finished_at)
    rest_calls = [i["rest_calls"] for i in admitted]
    record: JSON = {
        "sent": len(interactions),
        "send_window_s": _s(max(sent) - first_sent if sent else None),
        "acknowledged": len(acks),
        "unacknowledged": len(interactions) - len(acks),
        "ack_p50_s": _s(percentile(acks, 0.5)),
        "ack_p99_s": _s(percentile(acks, 0.99)),
        "ack_max_s": _s(max(acks) if acks else None),
        "admitted": len(admitted),
        "admissions_per_s": round(len(admitted) / admission_span, 1) if admission_span else None,
        "refusals": dict(refusals),
        "busy": refusals.get("busy", 0),
        "delivered": outcomes.get("delivered", 0),
        "failed": outcomes.get("failed", 0),
        "lost": len(admitted) - outcomes.get("delivered", 0) - outcomes.get("failed", 0),
        "detection_p50_s": _s(_unscaled(percentile(detection, 0.5), time_scale), 2),
        "detection_p99_s": _s(_unscaled(percentile(detection, 0.99), time_scale), 2),
        "detection_p50_real_ms": _ms(percentile(detection, 0.5)),
        "overhead_p50_ms": _ms(percentile(overhead, 0.5)),
        "overhead_p99_ms": _ms(percentile(overhead, 0.99)),
        "overhead_max_ms": _ms(max(overhead) if overhead else None),
        "overhead_parts_p50_ms": {
            "success_poll_to_download_request": _ms(percentile(to_download, 0.5)),
            "download_sent_to_upload_request": _ms(percentile(download_to_upload, 0.5)),
            "upload_transfer": _ms(percentile(upload, 0.5)),
        },
        "polls_per_job": round(sum(polls) / len(polls), 2) if polls else None,
        "rest_calls_per_job": round(sum(rest_calls) / len(rest_calls), 2) if rest_calls else None,
        "rest_calls_total": fake_report["calls"],
        "rest_calls_unattributed": fake_report["unattributed_calls"],
        "rate_limited_429": fake_report["rate_limited"],
        "spec_violations": fake_report["spec_violations"],
        "spec_violations_first": fake_report["spec_violations_first"],
        "attachment_bytes_mean": round(sum(sizes) / len(sizes)) if sizes else None,
        "peak_rss_mb": None,
        "loop_lag_p99_ms": _ms(percentile(lag, 0.99)),
        "loop_lag_max_ms": _ms(max(lag) if lag else None),
        "bot_cpu_seconds": None,
    }
    if bot_stats is not None:
        record["peak_rss_mb"] = round(bot_stats["peak_rss_bytes"] / 2**20, 1)
        record["bot_cpu_seconds"] = round(
            bot_stats["cpu_user_seconds"] + bot_stats["cpu_system_seconds"], 2)
    return record


def _unscaled(value: float | None, time_scale: float) -> float | None:
    return None if value is None else value / time_scale


def _lag_in_window(stats: JSON | None, start: float, end: float) -> list[float]:
    if stats is None:
        return []
    return [lag for at, lag in stats["lag_samples"] if start <= at <= end]
