"""The benchmark's table (Markdown, so it reads on a terminal and pastes into the README)."""

from __future__ import annotations

from typing import Any

COLUMNS: tuple[tuple[str, str], ...] = (
    ("run", "run"),
    ("ack", "ack p50 / p99 s"),
    ("admitted", "admitted"),
    ("busy", "busy"),
    ("other", "other refusals"),
    ("unacked", "not acked"),
    ("delivered", "delivered"),
    ("lost", "lost"),
    ("detect", "detection p50 / p99 s*"),
    ("overhead", "overhead p50 / p99 ms"),
    ("polls", "polls/job"),
    ("rest", "REST/job"),
    ("429", "429s"),
    ("spec", "spec violations"),
    ("rss", "peak RSS MB"),
    ("lag", "loop lag p99 ms"),
)


def _pair(a: Any, b: Any) -> str:
    if a is None and b is None:
        return "–"
    return f"{_one(a)} / {_one(b)}"


def _one(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:g}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


def row(record: dict[str, Any]) -> dict[str, str]:
    mode = record["mode"]
    n = record["n"]
    run = f"burst {n}" if mode == "burst" else f"{record['rate_per_s']:g}/s × {n}"
    other = sum(v for k, v in record["refusals"].items() if k != "busy")
    return {
        "run": f"{run} · {record['poller']}" + (
            f" · ×{record['time_scale']:g}" if record["time_scale"] != 1 else " · real speed"),
        "ack": _pair(record["ack_p50_s"], record["ack_p99_s"]),
        "admitted": _one(record["admitted"]),
        "busy": _one(record["busy"]),
        "other": _one(other),
        "unacked": _one(record["unacknowledged"]),
        "delivered": _one(record["delivered"]),
        "lost": _one(record["lost"]),
        "detect": _pair(record["detection_p50_s"], record["detection_p99_s"]),
        "overhead": _pair(record["overhead_p50_ms"], record["overhead_p99_ms"]),
        "polls": _one(record["polls_per_job"]),
        "rest": _one(record["rest_calls_per_job"]),
        "429": _one(record["rate_limited_429"]),
        "spec": _one(record["spec_violations"]),
        "rss": _one(record["peak_rss_mb"]),
        "lag": _one(record["loop_lag_p99_ms"]),
    }


def render(records: list[dict[str, Any]]) -> str:
    header = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    rule = "|" + "---|" * len(COLUMNS)
    lines = [header, rule]
    for record in records:
        cells = row(record)
        lines.append("| " + " | ".join(cells[key] for key, _ in COLUMNS) + " |")
    return "\n".join(lines)
