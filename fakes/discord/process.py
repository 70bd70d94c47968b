"""The fake Discord as a process of its own: `python -m fakes.discord --port 0 --guilds 1`.

Benchmarks run the real bot against it from another process, so the fake's own work does not
share the bot's event loop. It builds `--guilds` guilds (one `#art` channel each), serves the
control API (`fakes.discord.control`) beside Discord's routes, prints one JSON line with its
addresses (`base_url`, `rest_base`, `gateway_url`, `bot_token`, `control_url`) and runs until
SIGTERM or Ctrl-C. The bot token is the fake's own, not a secret.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal

from fakes.discord.control import CONTROL_PREFIX, FakeDiscordControl, build_world
from fakes.discord.server import FakeDiscord, FakeDiscordConfig
from fakes.serving import serve_forever


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fakes.discord",
        description="Run the fake Discord (REST + gateway + /_control/ API) on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port (printed)")
    parser.add_argument("--guilds", type=int, default=1, help="guilds to create (one channel each)")
    parser.add_argument(
        "--edit-rate-window", type=float, default=5.0,
        help="seconds of Discord's per-message edit window (5 edits per 5 s; scale it with time)",
    )
    parser.add_argument("--edit-rate-limit", type=int, default=5, help="edits per window")
    parser.add_argument(
        "--ack-window", type=float, default=3.0, help="seconds to acknowledge an interaction"
    )
    return parser


async def serve(args: argparse.Namespace) -> None:
    config = FakeDiscordConfig(
        ack_window=args.ack_window,
        edit_rate_limit=args.edit_rate_limit,
        edit_rate_window=args.edit_rate_window,
    )
    fake = FakeDiscord(config, host=args.host, port=args.port)
    control = FakeDiscordControl(fake, build_world(fake, max(1, args.guilds)))
    fake.app_hooks.append(control.install)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with fake:
        print(json.dumps({
            "base_url": fake.base_url,
            "rest_base": fake.rest_base,
            "gateway_url": fake.gateway_url,
            "bot_token": fake.bot_token,
            "control_url": fake.base_url + CONTROL_PREFIX,
        }), flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return serve_forever(serve(args), args.host, args.port)
