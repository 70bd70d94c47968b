"""Acknowledge database-backed commands inside Discord's 3 s window, however slow the database.

A command marked `@uses_database` where it is declared (`/imagine-quota`, the `/imagine-admin`
group and so every subcommand under it) answers ephemerally after reading the database. If that
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
from typing import Any, Final, TypeVar

import discord
from discord import app_commands

from bot.clock import Sleep

log = logging.getLogger(__name__)

AppCommand = app_commands.Command[Any, ..., Any] | app_commands.Group | app_commands.ContextMenu
CommandT = TypeVar("CommandT", bound=AppCommand)

# The key in a command's `extras` that `uses_database` sets.
USES_DATABASE: Final = "imagine_uses_database"
# Leave room inside Discord's 3 s for the deferral's own round trip.
DEFER_AFTER: Final = 1.5
_KEY: Final = "imagine_auto_defer"


def uses_database(command: CommandT) -> CommandT:
    """Mark a command (or a group: all its subcommands) whose answer needs the database and is
    always ephemeral, so a slow database makes it defer instead of failing.

    Put it above `@app_commands.command`, or wrap the `app_commands.Group(...)`.
    """
    command.extras[USES_DATABASE] = True
    return command


def needs_database(command: AppCommand | None) -> bool:
    """True if `command` or a group it belongs to is marked `@uses_database`."""
    while command is not None:
        if command.extras.get(USES_DATABASE):
            return True
        command = command.parent if not isinstance(command, app_commands.ContextMenu) else None
    return False


@dataclass(eq=False)
class _AutoDefer:
    sleeping: bool = True
    task: asyncio.Task[None] | None = field(default=None, repr=False)


def watch(
    interaction: discord.Interaction, after: float = DEFER_AFTER, sleep: Sleep = asyncio.sleep
) -> None:
    """Defer a `@uses_database` command ephemerally if nothing answered it within `after` s."""
    if interaction.type is not discord.InteractionType.application_command:
        return
    if not needs_database(interaction.command) or _KEY in interaction.extras:
        return
    state = _AutoDefer()
    interaction.extras[_KEY] = state
    state.task = asyncio.create_task(_defer_later(interaction, state, after, sleep),
                                     name=f"auto-defer-{interaction.id}")


async def _defer_later(
    interaction: discord.Interaction, state: _AutoDefer, after: float, sleep: Sleep
) -> None:
    await sleep(after)
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
