"""Commands marked `@uses_database` where they are declared defer when the database is slow;
unmarked commands are left alone. Time is a manual clock: nothing waits for real."""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.app.bot import cog_extensions
from bot.clock import Sleep
from bot.interactions.transport import acknowledge
from bot.interactions.transport.acknowledge import (
    DEFER_AFTER,
    AppCommand,
    needs_database,
    uses_database,
)
from bot.limits.admin import GuildAdmin
from cogs.admin import Admin
from cogs.imagine import Imagine
from cogs.quota import Quota
from fakes.clock import ManualClock

# The name list acknowledge kept before the mark (`DATABASE_COMMANDS`).
FORMER_DATABASE_COMMANDS = {"imagine-quota", "imagine-admin"}


@dataclass
class FakeResponse:
    done: bool = False
    deferrals: list[dict[str, bool]] = field(default_factory=list)

    def is_done(self) -> bool:
        return self.done

    async def defer(self, *, ephemeral: bool, thinking: bool) -> None:
        self.deferrals.append({"ephemeral": ephemeral, "thinking": thinking})
        self.done = True


@dataclass
class FakeInteraction:
    command: AppCommand | None
    type: discord.InteractionType = discord.InteractionType.application_command
    id: int = 1
    extras: dict[str, Any] = field(default_factory=dict)
    response: FakeResponse = field(default_factory=FakeResponse)


async def watched(interaction: FakeInteraction, sleep: Sleep) -> None:
    """Run `watch` and let its deferral task (if any) finish."""
    acknowledge.watch(cast(discord.Interaction, interaction), sleep=sleep)
    state = interaction.extras.get("imagine_auto_defer")
    if state is not None:
        await state.task


def subcommand(group: app_commands.Group, *path: str) -> AppCommand:
    found: AppCommand | None = group
    for name in path:
        assert isinstance(found, app_commands.Group)
        found = found.get_command(name)
    assert found is not None
    return found


async def test_a_marked_command_is_deferred_when_the_database_is_slow() -> None:
    clock = ManualClock()
    interaction = FakeInteraction(Quota.quota)
    await watched(interaction, clock.sleep)
    assert clock.sleeps == [DEFER_AFTER]
    assert interaction.response.deferrals == [{"ephemeral": True, "thinking": True}]


async def test_a_subcommand_of_a_marked_group_is_deferred_too() -> None:
    clock = ManualClock()
    interaction = FakeInteraction(subcommand(Admin.admin, "limits", "set"))
    await watched(interaction, clock.sleep)
    assert interaction.response.deferrals == [{"ephemeral": True, "thinking": True}]


async def test_an_unmarked_command_is_never_deferred() -> None:
    clock = ManualClock()
    for command in (Imagine.imagine, None):
        interaction = FakeInteraction(command)
        await watched(interaction, clock.sleep)
        assert interaction.extras == {} and interaction.response.deferrals == []
    assert clock.sleeps == []


async def test_an_answer_in_time_cancels_the_deferral() -> None:
    never = asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        await never.wait()

    interaction = FakeInteraction(Quota.quota)
    acknowledge.watch(cast(discord.Interaction, interaction), sleep=slow_sleep)
    state = interaction.extras["imagine_auto_defer"]
    await asyncio.sleep(0)  # the deferral task is waiting in its sleep
    await acknowledge.settle(cast(discord.Interaction, interaction))
    await asyncio.gather(state.task, return_exceptions=True)
    assert state.task.cancelled() and interaction.response.deferrals == []


def test_the_mark_reaches_every_subcommand_and_survives_the_cog_copy() -> None:
    cog = Admin(cast(GuildAdmin, None))  # a cog instance holds copies of its class's commands
    assert cog.admin is not Admin.admin and needs_database(cog.admin)
    leaves = list(_leaves(cog.admin))
    assert len(leaves) > 10 and all(needs_database(leaf) for leaf in leaves)


def test_every_command_of_the_former_name_list_carries_the_mark() -> None:
    declared = {command.name: command for command in _top_level_commands()}
    assert set(declared) >= FORMER_DATABASE_COMMANDS
    marked = {name for name, command in declared.items() if needs_database(command)}
    assert marked == FORMER_DATABASE_COMMANDS  # and no other command started deferring


def test_uses_database_marks_a_plain_command() -> None:
    @uses_database
    @app_commands.command(name="probe", description="probe")
    async def probe(interaction: discord.Interaction) -> None:
        pass

    assert needs_database(probe) and probe.extras == {acknowledge.USES_DATABASE: True}


async def test_a_real_interaction_resolves_to_its_marked_command() -> None:
    client = discord.Client(intents=discord.Intents.none())
    tree = app_commands.CommandTree(client)
    tree.add_command(Admin(cast(GuildAdmin, None)).admin)
    tree.add_command(Imagine.imagine)
    admin = _interaction(client, "imagine-admin", [
        {"name": "limits", "type": 2, "options": [{"name": "set", "type": 1, "options": []}]}
    ])
    imagine = _interaction(client, "imagine", [])
    assert admin.command is not None and admin.command.name == "set"
    assert needs_database(admin.command) and not needs_database(imagine.command)


def _interaction(
    client: discord.Client, name: str, options: list[dict[str, object]]
) -> discord.Interaction:
    data: Any = {
        "id": "1", "application_id": "2", "type": 2, "token": "t", "version": 1,
        "attachment_size_limit": 8 << 20, "authorizing_integration_owners": {},
        "entitlements": [],
        "user": {"id": "3", "username": "a", "discriminator": "0", "avatar": None},
        "data": {"id": "9", "name": name, "type": 1, "options": options},
    }
    return discord.Interaction(data=data, state=client._connection)


def _leaves(group: app_commands.Group) -> Iterator[AppCommand]:
    for command in group.commands:
        if isinstance(command, app_commands.Group):
            yield from _leaves(command)
        else:
            yield command


def _top_level_commands() -> Iterator[AppCommand]:
    for extension in cog_extensions():
        module = importlib.import_module(extension)
        for cog in vars(module).values():
            if inspect.isclass(cog) and issubclass(cog, commands.Cog) and cog is not commands.Cog:
                yield from cog.__cog_app_commands__
