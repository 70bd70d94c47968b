from __future__ import annotations

import logging

import pytest

from bot.logs import configure_logging


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING"])
def test_discord_logger_never_below_info(level: str) -> None:
    configure_logging(level)
    assert logging.getLogger("bot").level == logging.getLevelName(level)
    assert logging.getLogger("discord").getEffectiveLevel() >= logging.INFO
    assert not logging.getLogger("discord.http").isEnabledFor(logging.DEBUG)


def test_configure_twice_adds_one_handler() -> None:
    configure_logging("INFO")
    configure_logging("INFO")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_imagine_bot", False)]
    assert len(ours) == 1
