"""`python -m bot generate "a poster that says HELLO" --size 1024*1536 --out poster.jpeg [--mock]`

Makes one image from the terminal with a live progress bar; no Discord involved. `--mock` runs
the embedded mock Novita in-process (durations of a few seconds), so it needs no key and no
network. Exit codes: 0 saved, 1 the image service failed, 2 bad input or missing settings.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from bot.config import SettingsError, load_settings
from bot.imaging import (
    DEFAULT_SIZE_TEXT,
    InvalidInputError,
    resolve_size,
    validate_prompt,
)
from bot.jobs.engine import JobEngine
from bot.jobs.model import JobStage
from bot.jobs.progress import ProgressUpdate
from bot.novita.client import NovitaClient
from bot.novita.errors import NovitaError
from bot.wording.messages import describe_error
from bot.wording.presentation import STAGE_LABELS

MOCK_TIME_SCALE: Final = 0.15  # a ~20 s job takes ~3 s against the embedded mock


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help="what to draw, in quotes")
    parser.add_argument("--size", default=DEFAULT_SIZE_TEXT,
                        help="W*H (also WxH or W×H; each side 256-1536) or a preset such as "
                             "portrait, landscape, square (default %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("image.jpeg"),
                        help="where to save the JPEG (default %(default)s)")
    parser.add_argument("--mock", action="store_true",
                        help="use the built-in mock Novita: no key, no network")
    parser.add_argument("--mock-time-scale", type=float, default=MOCK_TIME_SCALE,
                        help=argparse.SUPPRESS)


async def run(args: argparse.Namespace) -> int:
    """Run the `generate` subcommand; returns the process exit code."""
    err = Console(stderr=True, highlight=False)
    try:
        prompt = validate_prompt(args.prompt)
        size = resolve_size(args.size)
    except InvalidInputError as exc:
        err.print(f"error: {_friendly(exc)}")
        return 2
    try:
        async with _engine(args) as (engine, time_scale):
            with _ProgressBar(err, time_scale) as bar:
                result = await engine.run(prompt, size, bar.update)
    except SettingsError as exc:
        err.print(exc.render(), markup=False)
        return 2
    except NovitaError as exc:
        err.print(f"error: {_friendly(exc)}", markup=False)
        return 1
    width, height, written = await asyncio.to_thread(save_jpeg, result.image, args.out)
    print(f"saved {args.out} ({width}×{height}, {written / 1024:.0f} KB, task {result.task_id})")
    return 0


generate_command = run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot generate", description=__doc__)
    add_arguments(parser)
    return asyncio.run(run(parser.parse_args(argv)))


@asynccontextmanager
async def _engine(args: argparse.Namespace) -> AsyncIterator[tuple[JobEngine, float]]:
    """A job engine on the real service, or on an embedded mock with its clock scaled."""
    if not args.mock:
        settings = load_settings()
        settings.require("novita_api_key")
        async with NovitaClient.from_settings(settings) as client:
            yield JobEngine.from_settings(client, settings), 1.0
        return

    from bot.terminal.cli import offline_tool

    async with offline_tool("fakes.offline").mock_engine(args.mock_time_scale) as pair:
        yield pair


class _ProgressBar:
    """A rich progress bar fed by `ProgressUpdate`s: phase, percent (estimated?), elapsed, ETA."""

    def __init__(self, console: Console, time_scale: float) -> None:
        self._scale = time_scale
        self._progress = Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%{task.fields[estimated]}"),
            TextColumn("{task.fields[timing]}"),
            console=console,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> _ProgressBar:
        self._progress.start()
        self._task = self._progress.add_task(
            STAGE_LABELS[JobStage.SUBMITTING], total=100, estimated="", timing=""
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def update(self, update: ProgressUpdate) -> None:
        assert self._task is not None
        timing = f"elapsed {update.elapsed_seconds * self._scale:.0f}s"
        if update.eta_seconds is not None and update.stage is not JobStage.DONE:
            timing += f", about {update.eta_seconds * self._scale:.0f}s left"
        self._progress.update(
            self._task,
            description=STAGE_LABELS[update.stage],
            completed=update.percent,
            estimated=" (estimated)" if update.percent_is_estimate else "",
            timing=timing,
        )


def save_jpeg(image: bytes, path: Path) -> tuple[int, int, int]:
    """Write `image` as a JPEG (converting PNG/WebP/…); returns (width, height, bytes written)."""
    with Image.open(io.BytesIO(image)) as decoded:
        decoded.load()
        width, height = decoded.size
        if decoded.format == "JPEG":
            data = image
        else:
            buffer = io.BytesIO()
            decoded.convert("RGB").save(buffer, format="JPEG", quality=92)
            data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return width, height, len(data)


def _friendly(exc: BaseException) -> str:
    return describe_error(exc) or f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    sys.exit(main())
