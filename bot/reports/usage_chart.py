"""`/imagine-admin usage` as a picture: one PNG, three panels, drawn with matplotlib's Agg.

1. images per UTC day for the last 30 days, stacked by how each job ended;
2. estimated spend per day, with the server's daily cap as a line;
3. the members who made the most images this month.

`render_usage_chart` is pure and synchronous (bytes in memory, nothing global touched: no
pyplot, an explicit Agg canvas, the figure cleared when done). `UsageChartRenderer` runs it in a
worker thread, one render at a time, so the event loop never waits on drawing. matplotlib is
imported on first use: processes that never draw a chart never pay for it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from bot.jobs.model import JobStatus
from bot.storage.repositories.ledger import DailyUsage

if TYPE_CHECKING:
    from matplotlib.axes import Axes

log = logging.getLogger(__name__)

WIDTH_INCHES: Final = 10.0
HEIGHT_INCHES: Final = 10.5
DPI: Final = 100  # 1000 × 1050 pixels: sharp in Discord's preview, small as a file
NAME_CHARS: Final = 18
TICK_EVERY_DAYS: Final = 7  # counted back from today, so today always has a label

# Okabe–Ito colours: told apart with every common colour-vision deficiency.
OUTCOME_GROUPS: Final[tuple[tuple[str, str, frozenset[JobStatus]], ...]] = (
    ("done", "#009E73", frozenset({JobStatus.SUCCEEDED})),
    ("cancelled (billed)", "#E69F00", frozenset({JobStatus.CANCELLED})),
    ("running", "#56B4E9", frozenset({JobStatus.RESERVED, JobStatus.SUBMITTED})),
    ("failed (not counted)", "#D55E00", frozenset({JobStatus.FAILED})),
    ("stopped early (not billed)", "#999999", frozenset({JobStatus.REFUNDED})),
)
SPEND_COLOUR: Final = "#7C5CFF"  # the bot's brand colour
CAP_COLOUR: Final = "#D55E00"
MEMBER_COLOUR: Final = "#0072B2"
PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"

# Display names may hold emoji or scripts the bundled font lacks; a box is fine, a log line
# per missing glyph is not. (Installed once, matched by message: nothing else is hidden.)
warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)


@dataclass(frozen=True)
class UsageChartData:
    days: Sequence[DailyUsage]  # oldest first, one per day, today last
    daily_cap_usd: float  # the server's daily spend cap (0: no cap)
    top_members: Sequence[tuple[str, int]]  # (name as shown, images this month), most first
    month_label: str  # e.g. "March 2025"


def outcome_counts(day: DailyUsage) -> dict[str, int]:
    """Images that day in each outcome group (every group present, zero when empty)."""
    return {
        label: sum(day.images_by_status.get(status, 0) for status in statuses)
        for label, _, statuses in OUTCOME_GROUPS
    }


def plain(text: str) -> str:
    """Text matplotlib must show as typed: `$` would start mathtext."""
    return text.replace("\\", "\\\\").replace("$", r"\$")


def short_name(name: str, limit: int = NAME_CHARS) -> str:
    name = " ".join(name.split())
    return name if len(name) <= limit else name[: limit - 1] + "…"


def day_ticks(days: Sequence[dt.date]) -> tuple[list[int], list[str]]:
    """Positions and labels for every `TICK_EVERY_DAYS`th day, counted back from the last."""
    positions = list(range(len(days) - 1, -1, -TICK_EVERY_DAYS))[::-1]
    return positions, [f"{days[p]:%b} {days[p].day}" for p in positions]


def render_usage_chart(data: UsageChartData) -> bytes:
    """The chart as PNG bytes. Pure: safe to call from a worker thread."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)  # Agg, chosen explicitly: no display, no pyplot state
    try:
        grid = figure.add_gridspec(3, 1, height_ratios=(1.15, 1.0, 0.95), hspace=0.55)
        _images_panel(figure.add_subplot(grid[0]), data)
        _spend_panel(figure.add_subplot(grid[1]), data)
        _members_panel(figure.add_subplot(grid[2]), data)
        figure.subplots_adjust(left=0.19, right=0.97, top=0.93, bottom=0.06)
        out = io.BytesIO()
        figure.savefig(out, format="png", facecolor="white")
        return out.getvalue()
    finally:
        figure.clear()


def _style(axes: Axes) -> None:
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.grid(axis="y", color="#DDDDDD", linewidth=0.8)
    axes.set_axisbelow(True)


def _day_axis(axes: Axes, data: UsageChartData) -> None:
    positions, labels = day_ticks([d.day for d in data.days])
    axes.set_xticks(positions, labels)
    axes.set_xlim(-0.7, len(data.days) - 0.3)


def _bars(
    axes: Axes,
    heights: Sequence[float],
    bottoms: Sequence[float],
    colour: str,
    label: str,
    width: float = 0.8,
) -> None:
    """Vertical bars at 0, 1, 2, … as one collection: one artist instead of a patch per bar,
    several times faster to build and draw than `Axes.bar` (limits are set by the caller)."""
    from matplotlib.collections import PolyCollection

    half = width / 2
    shapes = [
        [(x - half, low), (x - half, low + h), (x + half, low + h), (x + half, low)]
        for x, (h, low) in enumerate(zip(heights, bottoms, strict=True))
        if h > 0
    ]
    axes.add_collection(
        PolyCollection(shapes, facecolors=colour, edgecolors="none", label=label),
        autolim=False,
    )


def _images_panel(axes: Axes, data: UsageChartData) -> None:
    from matplotlib.ticker import MaxNLocator

    _style(axes)
    counts = [outcome_counts(day) for day in data.days]
    bottoms = [0] * len(data.days)
    total = 0
    for label, colour, _ in OUTCOME_GROUPS:
        heights = [c[label] for c in counts]
        if any(heights):  # the legend names only outcomes that happened
            _bars(axes, heights, bottoms, colour, label)
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
            total += sum(heights)
    _title(axes, f"Images per day, last {len(data.days)} days (UTC) — {total:,} in all",
           legend=total > 0)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(0, max(max(bottoms, default=0) * 1.08, 4))
    _day_axis(axes, data)
    if total:
        _legend_row(axes)
    else:
        _empty(axes, "No images in these days")


def _spend_panel(axes: Axes, data: UsageChartData) -> None:
    from matplotlib.ticker import FuncFormatter

    _style(axes)
    spent = [day.spent_usd for day in data.days]
    _bars(axes, spent, [0.0] * len(spent), SPEND_COLOUR, "estimated spend")
    cap = data.daily_cap_usd
    top = max(spent, default=0.0)
    if cap > 0:
        axes.axhline(cap, color=CAP_COLOUR, linestyle="--", linewidth=1.6,
                     label=plain(f"daily cap ${cap:,.2f}"))
        top = max(top, cap)
        over = sum(1 for s in spent if s > cap)
        note = f" — over the cap on {over} day{'' if over == 1 else 's'}" if over else ""
        title = f"Estimated spend per day (cap ${cap:,.2f}){note}"
    else:
        title = "Estimated spend per day (no daily cap)"
    _title(axes, plain(f"{title} — ${sum(spent):,.2f} in all"), legend=cap > 0)
    axes.set_ylim(0, top * 1.1 if top > 0 else 1.0)
    # Below a few cents the ticks fall between cents: show a third decimal so no two read alike.
    decimals = 2 if top >= 0.05 else 3
    axes.yaxis.set_major_formatter(
        FuncFormatter(lambda value, _: plain(f"${value:,.{decimals}f}"))
    )
    _day_axis(axes, data)
    if cap > 0:
        _legend_row(axes)
    if top == 0:
        _empty(axes, "Nothing spent in these days")


def _members_panel(axes: Axes, data: UsageChartData) -> None:
    from matplotlib.ticker import MaxNLocator

    _style(axes)
    axes.grid(axis="y", visible=False)
    axes.grid(axis="x", color="#DDDDDD", linewidth=0.8)
    _title(axes, plain(f"Top members, {data.month_label}"), legend=False)
    members = list(data.top_members)
    if not members:
        axes.set_yticks([])
        axes.set_xticks([])
        _empty(axes, "Nobody has made an image this month")
        return
    rows = list(range(len(members)))
    counts = [count for _, count in members]
    axes.barh(rows, counts, color=MEMBER_COLOUR, height=0.65)
    axes.set_yticks(rows, [plain(short_name(name)) for name, _ in members])
    axes.set_ylim(max(len(members), 5) - 0.5, -0.5)  # most active on top; bars never bloat
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlim(0, max(counts) * 1.15)
    for row, count in zip(rows, counts, strict=True):
        axes.annotate(f"{count:,}", (count, row), xytext=(4, 0), textcoords="offset points",
                      va="center", fontsize=9)
    axes.set_xlabel("images")


def _title(axes: Axes, text: str, *, legend: bool) -> None:
    """A bold title on the left; with room below it for a legend row when there is one.
    (A fixed position also spares matplotlib its costly automatic title placement.)"""
    axes.set_title(text, loc="left", fontsize=12, fontweight="bold", y=1.0,
                   pad=24 if legend else 8)


def _legend_row(axes: Axes) -> None:
    """The legend in one row between the title and the plot, where it hides no bar."""
    axes.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=5, fontsize=8.5,
                frameon=False, borderaxespad=0.1, handlelength=1.4, columnspacing=1.2)


def _empty(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, transform=axes.transAxes, ha="center", va="center",
              fontsize=11, color="#777777")


def alt_text(data: UsageChartData) -> str:
    """The chart's alt text for screen readers (Discord shows attachment descriptions)."""
    images = sum(sum(day.images_by_status.values()) for day in data.days)
    spent = sum(day.spent_usd for day in data.days)
    cap = f"${data.daily_cap_usd:,.2f}" if data.daily_cap_usd else "none"
    return (
        f"Chart: {images:,} images and ${spent:,.2f} estimated spend over the last "
        f"{len(data.days)} days (daily cap {cap}); top members for {data.month_label}."
    )


class UsageChartRenderer:
    """Draws charts off the event loop, one at a time (a chart takes a core for a moment)."""

    def __init__(self, concurrency: int = 1) -> None:
        self._semaphore = asyncio.Semaphore(concurrency)

    async def render(self, data: UsageChartData) -> bytes:
        async with self._semaphore:
            return await asyncio.to_thread(render_usage_chart, data)

