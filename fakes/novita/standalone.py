"""`python -m bot mock-novita`: the mock Novita on its own, until Ctrl-C or SIGTERM.

Options: `--port` (0 = any), `--time-scale`, `--key`, `--queue-probability`, `--seed`, and for
load benchmarks `--realistic-jpegs` (~340 KB at 1024², ~760 KB at 1536²), `--plain-images` (one
cached JPEG per size) and `--control` (`GET /_control/tasks`, see `fakes.novita.control`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from dataclasses import replace

from fakes.novita.images import REALISTIC_JPEG_BYTES
from fakes.novita.server import MockNovita, MockNovitaConfig
from fakes.serving import serve_forever


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot mock-novita",
        description="Run the fake Novita Qwen-Image API locally (for the demo and manual tests).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8089, help="port (0 = any free port)")
    parser.add_argument(
        "--time-scale", type=float, default=1.0,
        help="multiply every duration (0.1 = ten times faster than real Qwen-Image)",
    )
    parser.add_argument("--key", default="mock-key", help="the API key clients must send")
    parser.add_argument(
        "--queue-probability", type=float, default=0.1,
        help="share of tasks that wait in the queue first",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument(
        "--realistic-jpegs", action="store_true",
        help="pad JPEGs to real Qwen-Image sizes (~340 KB at 1024², ~760 KB at 1536²)",
    )
    parser.add_argument(
        "--plain-images", action="store_true",
        help="do not draw the prompt: one cached JPEG per size (cheap for load benchmarks)",
    )
    parser.add_argument(
        "--control", action="store_true",
        help="serve GET /_control/tasks with every task's timings (for benchmarks)",
    )
    return parser


async def _serve(config: MockNovitaConfig, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    mock = MockNovita(config)
    base_url = await mock.start(host, port)
    print(f"Mock Novita listening on {base_url}", flush=True)
    print(f"Point the bot at it: NOVITA_BASE_URL={base_url} NOVITA_API_KEY={config.api_key} "
          f"TRUSTED_IMAGE_HOSTS={base_url.removeprefix('http://')}")
    print("Prompt markers such as [mock:failed] or [mock:rate-limit] trigger faults. Ctrl-C stops.",
          flush=True)
    try:
        await stop.wait()
    finally:
        await mock.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the mock until Ctrl-C or SIGTERM. Returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.time_scale <= 0:
        print("--time-scale must be positive")
        return 2
    config = replace(
        MockNovitaConfig(),
        api_key=args.key,
        time_scale=args.time_scale,
        queue_probability=args.queue_probability,
        seed=args.seed,
        jpeg_bytes_by_pixels=REALISTIC_JPEG_BYTES if args.realistic_jpegs else None,
        draw_prompt=not args.plain_images,
        control_api=args.control,
    )
    return serve_forever(_serve(config, args.host, args.port), args.host, args.port)


