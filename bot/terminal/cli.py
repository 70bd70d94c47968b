"""Command line: `python -m bot [run|generate|mock-novita|demo|sync]` (the default is `run`)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from bot.config import SettingsError, load_settings
from bot.logs import configure_logging


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="imagine-bot: a Discord /imagine bot for Qwen-Image on Novita AI.",
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the Discord bot (the default)")

    sync = sub.add_parser("sync", help="register the slash commands with Discord, then exit")
    sync.add_argument(
        "--guild", type=int, default=None, help="sync to one guild (instant) instead of globally"
    )

    from bot.terminal.generate import add_arguments as add_generate_arguments

    add_generate_arguments(
        sub.add_parser("generate", help="make one image from the terminal (no Discord)")
    )

    sub.add_parser(
        "mock-novita",
        help="run the mock Novita server on its own (--port 8089, --time-scale, --key; see --help)",
        add_help=False,
    )

    demo = sub.add_parser("demo", help="see the whole bot work offline: fake Discord + mock Novita")
    demo.add_argument("prompt", nargs="?", default="a poster that says HELLO")
    demo.add_argument("--size", default="1024*1536")
    demo.add_argument("--out", default="demo.jpeg")
    return parser


def offline_tool(module: str) -> ModuleType:
    """A module of the `fakes` package (installed with the project) for the offline modes.

    Looked up by name, as cogs are, so the product package never imports its own fakes.
    """
    return importlib.import_module(module)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["mock-novita"]:
        # The mock has its own options (--port, --time-scale, …); hand them over untouched.
        configure_logging("INFO")
        return int(offline_tool("fakes.novita.server").main(arguments[1:]))
    args = _build_parser().parse_args(arguments)
    command = args.command or "run"
    try:
        if command == "generate":
            from bot.terminal.generate import run as run_generate

            configure_logging("WARNING")
            return asyncio.run(run_generate(args))
        if command == "demo":
            configure_logging("WARNING")
            demo = offline_tool("fakes.demo")
            return int(asyncio.run(demo.run(args.prompt, args.size, args.out)))

        settings = load_settings()
        configure_logging(settings.log_level)
        from bot.app import bot as app

        if command == "sync":
            settings.require("discord_token")
            return asyncio.run(app.sync_commands(settings, guild_id=args.guild))
        settings.require("discord_token", "novita_api_key")
        return app.run_bot(settings)
    except SettingsError as exc:
        print(exc.render(offline_hint=not Path(".env").is_file()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
