"""Logging set-up: one format, the bot's own level, and the discord logger held at INFO+.

discord.py logs request payloads, interaction tokens included, at DEBUG; so whatever LOG_LEVEL
says, the `discord` logger never goes below INFO.
"""

from __future__ import annotations

import logging

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_imagine_bot", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._imagine_bot = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    numeric = logging.getLevelName(level.upper())
    root.setLevel(logging.INFO)
    for name in ("bot", "cogs", "bench"):
        logging.getLogger(name).setLevel(numeric)
    discord_level = max(numeric, logging.INFO) if isinstance(numeric, int) else logging.INFO
    logging.getLogger("discord").setLevel(discord_level)
    # aiohttp.access logs every request of the embedded mock servers: noise for operators.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
