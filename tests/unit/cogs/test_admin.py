"""`/imagine-admin`'s adapter: one server-only group for Manage Server, its subcommands and
options, the run-time re-check, invalid input answered privately, and options handed to
`GuildAdmin` as the moderator gave them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from discord import AppCommandOptionType as Option
from discord import app_commands

from bot.interactions.components.admin_history import HistoryPageButton
from bot.limits.admin import MAX_SPEND_USD, AdminInputError, AdminProblem, LimitName
from bot.storage.repositories.guild_settings import NsfwPolicy
from bot.wording import admin_presentation as show
from bot.wording.refusals import admin_error_text
from cogs import admin
from cogs.admin import Admin
from tests.unit.cogs.conftest import (
    GUILD_ID,
    USER_ID,
    Calls,
    FakeInteraction,
    RecordingBot,
    as_interaction,
    contexts,
    installs,
    options,
)

SUBCOMMANDS = {
    "show", "usage", "history", "nsfw",
    "limits set", "limits reset",
    "roles set", "roles clear", "roles list",
    "exempt add", "exempt remove", "exempt list",
    "words add", "words remove", "words list",
    "channels allow", "channels remove", "channels list",
    "users ban", "users unban", "users reset", "users bans",
}


def make_cog(guild_admin: Calls | None = None) -> Admin:
    return Admin(guild_admin or Calls())  # type: ignore[arg-type]


def command(cog: Admin, path: str) -> app_commands.Command[Any, ..., Any]:
    found = {
        c.qualified_name.removeprefix("imagine-admin "): c
        for c in cog.walk_app_commands()
        if isinstance(c, app_commands.Command)
    }
    return found[path]


def test_one_group_for_manage_server_only_in_servers() -> None:
    cog = make_cog()
    group = cog.admin
    assert group.name == "imagine-admin" and group.guild_only
    assert group.default_permissions is not None and group.default_permissions.manage_guild
    assert group.default_permissions.value == 1 << 5  # Manage Server and nothing else
    assert installs(group) == (True, False)
    assert contexts(group) == (True, False, False)
    commands = {
        c.qualified_name.removeprefix("imagine-admin ")
        for c in cog.walk_app_commands()
        if isinstance(c, app_commands.Command)
    }
    assert commands == SUBCOMMANDS


def test_options_are_declared_with_their_ranges_and_choices() -> None:
    cog = make_cog()
    limits_set = command(cog, "limits set")
    assert options(limits_set) == {
        "limit": (Option.string, True, None, None, False),
        "value": (Option.number, True, 0.0, MAX_SPEND_USD, False),
    }
    assert [(c.name, c.value) for c in limits_set.parameters[0].choices] == list(
        show.LIMIT_CHOICES)
    reset = command(cog, "limits reset").parameters[0]
    assert [c.value for c in reset.choices][-1] == show.ALL_LIMITS
    assert set(options(command(cog, "roles set"))) == {"role", "per_window", "concurrent", "daily"}
    assert options(command(cog, "users ban"))["reason"] == (Option.string, False, 1, 200, False)
    assert options(command(cog, "words add"))["word"] == (Option.string, True, 1, 100, False)
    assert options(command(cog, "history")) == {
        "member": (Option.user, False, None, None, False),
        "page": (Option.integer, False, 1, 10_000, False),
    }


async def test_the_run_time_check_refuses_dms_and_members_without_manage_server() -> None:
    cog = make_cog()
    with pytest.raises(app_commands.NoPrivateMessage):
        await cog.interaction_check(as_interaction(FakeInteraction(guild_id=None)))
    with pytest.raises(app_commands.MissingPermissions):
        await cog.interaction_check(as_interaction(FakeInteraction(moderator=False)))
    assert await cog.interaction_check(as_interaction(FakeInteraction(moderator=True)))


async def test_invalid_input_is_answered_privately_and_other_errors_are_left_alone() -> None:
    cog = make_cog()
    error = AdminInputError(AdminProblem.WINDOW_TOO_SHORT, limit=LimitName.WINDOW_MINUTES)
    handled = FakeInteraction(moderator=True)
    wrapped = app_commands.CommandInvokeError(command(cog, "limits set"), error)
    await cog.cog_app_command_error(as_interaction(handled), wrapped)
    [answer] = handled.answers()
    assert answer.content == admin_error_text(error) and answer.options["ephemeral"] is True
    assert handled.extras["error_handled"] is True

    other = FakeInteraction(moderator=True)
    await cog.cog_app_command_error(as_interaction(other), app_commands.CheckFailure())
    assert other.answers() == [] and "error_handled" not in other.extras


async def test_options_reach_guild_admin_with_the_server_and_the_moderator() -> None:
    guild_admin = Calls(add_word=("kraken", True), unban=False)
    cog = make_cog(guild_admin)
    interaction = FakeInteraction(moderator=True)
    await command(cog, "nsfw").callback(cog, as_interaction(interaction), "spoiler")
    await command(cog, "words add").callback(cog, as_interaction(interaction), "Kraken")
    member = SimpleNamespace(id=99)
    await command(cog, "users unban").callback(cog, as_interaction(interaction), member)
    assert guild_admin.calls == [
        ("set_nsfw_policy", (GUILD_ID, USER_ID, NsfwPolicy.SPOILER), {}),
        ("add_word", (GUILD_ID, USER_ID, "Kraken"), {}),
        ("unban", (GUILD_ID, USER_ID, 99), {}),
    ]
    assert [a.content for a in interaction.response.sent] == [
        show.nsfw_policy_text(NsfwPolicy.SPOILER)
    ]
    assert [a.content for a in interaction.followup.sent] == [
        show.word_added_text("kraken", True), show.unbanned_text(99, False),
    ]


async def test_setup_registers_the_history_pages_and_teardown_removes_them() -> None:
    guild_admin = Calls()
    bot = RecordingBot(services=SimpleNamespace(guild_admin=guild_admin))
    await admin.setup(bot)  # type: ignore[arg-type]
    await admin.teardown(bot)  # type: ignore[arg-type]
    assert bot.added_items == bot.removed_items == [HistoryPageButton]
    [cog] = bot.cogs
    assert cog.guild_admin is guild_admin
