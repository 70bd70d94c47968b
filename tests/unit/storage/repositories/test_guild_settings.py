"""Guild settings on both backends: defaults, saving, resetting, 64-bit ids."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from bot.storage import (
    GuildConfig,
    GuildSettingsRepo,
    NsfwPolicy,
)
from bot.storage.database import Database

if TYPE_CHECKING:
    from fakes.clock import ManualUtcClock


SNOWFLAKE = 1_234_567_890_123_456_789  # Discord ids need all 64 bits


async def test_guild_settings_default_save_and_reset(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    repo = GuildSettingsRepo(database, utc_clock)
    assert await repo.get(SNOWFLAKE) == GuildConfig(SNOWFLAKE)
    changed = dataclasses.replace(
        GuildConfig(SNOWFLAKE),
        nsfw_policy=NsfwPolicy.SPOILER,
        user_daily_quota=0,
        guild_daily_spend_cap_usd=2.5,
    )
    await repo.save(changed)
    assert await repo.get(SNOWFLAKE) == changed
    await repo.save(dataclasses.replace(changed, user_daily_quota=None))
    assert (await repo.get(SNOWFLAKE)).user_daily_quota is None
    assert await repo.get(1) == GuildConfig(1)  # other guilds untouched
    await repo.reset(SNOWFLAKE)
    assert await repo.get(SNOWFLAKE) == GuildConfig(SNOWFLAKE)
