"""Acknowledge database-backed commands inside Discord's 3 s window, however slow the database.

`/imagine-quota` and `/imagine-admin …` answer ephemerally after reading the database. If that
takes longer than `DEFER_AFTER` (a stalled PostgreSQL can take its whole command timeout), the
interaction is deferred ephemerally ("thinking…") so Discord does not show "This interaction
failed"; the answer then arrives as the follow-up. `reply_ephemeral` calls `settle()` first, so
a deferral in flight and the reply never race each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Final

import discord

log = logging.getLogger(__name__)

# Commands whose answer needs the database (and never answers publicly).
DATABASE_COMMANDS: Final = frozenset({"imagine-quota", "imagine-admin"})
# Leave room inside Discord's 3 s for the deferral's own round trip.
DEFER_AFTER: Final = 1.5
_KEY: Final = "imagine_auto_defer"


@dataclass(eq=False)
class _AutoDefer:
    sleeping: bool = True
    task: asyncio.Task[None] | None = field(default=None, repr=False)


def watch(interaction: discord.Interaction, after: float = DEFER_AFTER) -> None:
    """Defer `interaction` ephemerally if nothing answered it within `after` seconds."""
    if interaction.type is not discord.InteractionType.application_command:
        return
    data: dict[str, object] = dict(interaction.data or {})
    name = data.get("name")
    if name not in DATABASE_COMMANDS or _KEY in interaction.extras:
        return
    state = _AutoDefer()
    interaction.extras[_KEY] = state
    state.task = asyncio.create_task(_defer_later(interaction, state, after),
                                     name=f"auto-defer-{interaction.id}")


async def _defer_later(interaction: discord.Interaction, state: _AutoDefer, after: float) -> None:
    await asyncio.sleep(after)
    state.sleeping = False
    if interaction.response.is_done():
        return
    try:
        await interaction.response.defer(ephemeral=True, thinking=True)
    except (discord.HTTPException, discord.InteractionResponded):
        log.info("could not defer a slow command in time", exc_info=True)


async def settle(interaction: discord.Interaction) -> None:
    """Before answering: drop a deferral not yet due, or wait for one already on its way."""
    state = interaction.extras.pop(_KEY, None)
    if not isinstance(state, _AutoDefer) or state.task is None:
        return
    if state.sleeping:
        state.task.cancel()
        return
    with contextlib.suppress(Exception):
        await state.task
