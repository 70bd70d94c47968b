"""`/imagine-admin …`: moderators change limits and moderation rules. A thin adapter.

Hidden from members without Manage Server by default (`default_permissions`), and re-checked on
every use, since server admins can change who sees a command. Every reply is ephemeral and pings
nobody; `bot.limits.admin.GuildAdmin` validates and audit-logs changes, and
`bot.interactions.admin_presentation` words the replies.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions import admin_presentation as show
from bot.interactions.admin_history import HistoryPageButton, history_page
from bot.interactions.checks import is_moderator
from bot.interactions.refusals import admin_error_text
from bot.interactions.replies import reply_ephemeral
from bot.interactions.usage_report import UsageReplies
from bot.limits.admin import (
    LIMITS,
    MAX_COUNT,
    MAX_SPEND_USD,
    AdminInputError,
    GuildAdmin,
    LimitName,
    RoleLimitsInput,
)
from bot.storage.guild_settings import NsfwPolicy

if TYPE_CHECKING:
    from bot.interactions.app import ImagineBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction["ImagineBot"]
ALL_LIMITS = "all"
LIMIT_CHOICES = [app_commands.Choice(name=s.label, value=str(n)) for n, s in LIMITS.items()]
RESET_CHOICES = [*LIMIT_CHOICES, app_commands.Choice(name="Every limit", value=ALL_LIMITS)]
NSFW_CHOICES = [
    app_commands.Choice(name="block: withhold flagged images", value=str(NsfwPolicy.BLOCK)),
    app_commands.Choice(name="spoiler: post them behind a spoiler", value=str(NsfwPolicy.SPOILER)),
]
Count = app_commands.Range[int, 0, MAX_COUNT]
Word = app_commands.Range[str, 1, 100]
ImageChannel = discord.TextChannel | discord.VoiceChannel


def _ids(interaction: Interaction) -> tuple[int, int]:
    """(guild, acting moderator); `interaction_check` guarantees a guild."""
    assert interaction.guild_id is not None
    return interaction.guild_id, interaction.user.id


class Admin(commands.Cog):
    admin = app_commands.Group(
        name="imagine-admin",
        description="Limits and moderation for /imagine (Manage Server)",
        default_permissions=discord.Permissions(manage_guild=True),
        guild_only=True,
    )
    limits = app_commands.Group(name="limits", description="Image limits", parent=admin)
    roles = app_commands.Group(name="roles", description="Limits for roles", parent=admin)
    exempt = app_commands.Group(
        name="exempt", description="Roles that skip the member limits", parent=admin
    )
    words = app_commands.Group(name="words", description="Blocked prompt words", parent=admin)
    channels = app_commands.Group(name="channels", description="Where /imagine works", parent=admin)
    users = app_commands.Group(name="users", description="Bans and resets", parent=admin)

    def __init__(self, guild_admin: GuildAdmin) -> None:
        self.guild_admin = guild_admin
        self.usage_replies = UsageReplies(guild_admin)  # the text, then the chart

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Run-time re-check: the command may have been made visible to anyone."""
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage()
        if not is_moderator(interaction):
            log.info("user %s was refused /imagine-admin in guild %s (no Manage Server)",
                     interaction.user.id, interaction.guild_id)
            raise app_commands.MissingPermissions(["manage_guild"])
        return True

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """A moderator's invalid input is answered here; anything else goes to the bot's handler."""
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        if isinstance(original, AdminInputError):
            interaction.extras["error_handled"] = True
            await reply_ephemeral(interaction, admin_error_text(original))

    # -- overview -------------------------------------------------------------------------------

    @admin.command(name="show", description="Every limit and rule for this server in one view")
    async def show_settings(self, interaction: Interaction) -> None:
        guild, _ = _ids(interaction)
        snapshot = await self.guild_admin.snapshot(guild)
        await reply_ephemeral(interaction, embed=show.settings_embed(snapshot))

    @admin.command(name="usage", description="Images and estimated spend today and this month")
    async def usage(self, interaction: Interaction) -> None:
        guild, _ = _ids(interaction)
        await self.usage_replies.send(interaction, guild)

    @admin.command(name="history", description="Who prompted what, newest first")
    @app_commands.describe(member="Only this member's images", page="Page number (1 = newest)")
    async def history(
        self,
        interaction: Interaction,
        member: discord.User | None = None,
        page: app_commands.Range[int, 1, 10_000] = 1,
    ) -> None:
        guild, _ = _ids(interaction)
        user_id = member.id if member else None
        embed, view = await history_page(self.guild_admin, guild, user_id, page)
        await reply_ephemeral(interaction, embed=embed, view=view)

    @admin.command(name="nsfw", description="What happens to images flagged as NSFW")
    @app_commands.describe(policy="block (default) or spoiler")
    @app_commands.choices(policy=NSFW_CHOICES)
    async def nsfw(self, interaction: Interaction, policy: str) -> None:
        guild, actor = _ids(interaction)
        await self.guild_admin.set_nsfw_policy(guild, actor, NsfwPolicy(policy))
        await reply_ephemeral(interaction, show.nsfw_policy_text(NsfwPolicy(policy)))

    # -- limits and roles -----------------------------------------------------------------------

    @limits.command(name="set", description="Change one limit for this server")
    @app_commands.describe(limit="Which limit", value="New value; 0 = unlimited (or no cap)")
    @app_commands.choices(limit=LIMIT_CHOICES)
    async def limits_set(
        self,
        interaction: Interaction,
        limit: str,
        value: app_commands.Range[float, 0.0, MAX_SPEND_USD],
    ) -> None:
        guild, actor = _ids(interaction)
        change = await self.guild_admin.set_limit(guild, actor, LimitName(limit), value)
        await reply_ephemeral(interaction, show.limit_change_text(change))

    @limits.command(name="reset", description="Back to the bot-wide default")
    @app_commands.describe(limit="Which limit, or every limit")
    @app_commands.choices(limit=RESET_CHOICES)
    async def limits_reset(self, interaction: Interaction, limit: str) -> None:
        guild, actor = _ids(interaction)
        name = None if limit == ALL_LIMITS else LimitName(limit)
        changes = await self.guild_admin.reset_limit(guild, actor, name)
        await reply_ephemeral(interaction, show.limits_reset_text(changes))

    @roles.command(name="set", description="Other limits for members with this role")
    @app_commands.describe(
        role="The role",
        per_window="Images per window (0 = unlimited)",
        concurrent="Jobs at once (0 = unlimited)",
        daily="Images per day (0 = unlimited)",
    )
    async def roles_set(
        self,
        interaction: Interaction,
        role: discord.Role,
        per_window: Count | None = None,
        concurrent: Count | None = None,
        daily: Count | None = None,
    ) -> None:
        guild, actor = _ids(interaction)
        values = RoleLimitsInput(per_window, concurrent, daily)
        await self.guild_admin.set_role(guild, actor, role.id, values)
        await reply_ephemeral(interaction, show.role_set_text(role.id, values))

    @roles.command(name="clear", description="Remove a role's limits")
    async def roles_clear(self, interaction: Interaction, role: discord.Role) -> None:
        guild, actor = _ids(interaction)
        cleared = await self.guild_admin.clear_role(guild, actor, role.id)
        await reply_ephemeral(interaction, show.role_cleared_text(role.id, cleared))

    @roles.command(name="list", description="Roles with their own limits, and exempt roles")
    async def roles_list(self, interaction: Interaction) -> None:
        await self._show_roles(interaction)

    @exempt.command(name="add", description="Members with this role skip the member limits")
    async def exempt_add(self, interaction: Interaction, role: discord.Role) -> None:
        guild, actor = _ids(interaction)
        added = await self.guild_admin.add_exempt(guild, actor, role.id)
        await reply_ephemeral(interaction, show.exempt_added_text(role.id, added))

    @exempt.command(name="remove", description="This role no longer skips the member limits")
    async def exempt_remove(self, interaction: Interaction, role: discord.Role) -> None:
        guild, actor = _ids(interaction)
        removed = await self.guild_admin.remove_exempt(guild, actor, role.id)
        await reply_ephemeral(interaction, show.exempt_removed_text(role.id, removed))

    @exempt.command(name="list", description="Roles that skip the member limits")
    async def exempt_list(self, interaction: Interaction) -> None:
        await self._show_roles(interaction)

    async def _show_roles(self, interaction: Interaction) -> None:
        guild, _ = _ids(interaction)
        snapshot = await self.guild_admin.snapshot(guild)
        embed = show.roles_embed(snapshot.role_overrides, snapshot.exempt_roles)
        await reply_ephemeral(interaction, embed=embed)

    # -- blocked words and channels -------------------------------------------------------------

    @words.command(name="add", description="Refuse prompts containing this word or phrase")
    @app_commands.describe(word="A word or phrase; * matches any letters (cat* blocks catalog)")
    async def words_add(self, interaction: Interaction, word: Word) -> None:
        guild, actor = _ids(interaction)
        term, added = await self.guild_admin.add_word(guild, actor, word)
        await reply_ephemeral(interaction, show.word_added_text(term, added))

    @words.command(name="remove", description="Allow this word again")
    async def words_remove(self, interaction: Interaction, word: Word) -> None:
        guild, actor = _ids(interaction)
        term, removed = await self.guild_admin.remove_word(guild, actor, word)
        await reply_ephemeral(interaction, show.word_removed_text(term, removed))

    @words.command(name="list", description="Every blocked word")
    async def words_list(self, interaction: Interaction) -> None:
        guild, _ = _ids(interaction)
        terms = await self.guild_admin.words(guild)
        await reply_ephemeral(interaction, embed=show.words_embed(terms))

    @channels.command(name="allow", description="Allow /imagine here (then only in listed ones)")
    async def channels_allow(self, interaction: Interaction, channel: ImageChannel) -> None:
        guild, actor = _ids(interaction)
        added = await self.guild_admin.allow_channel(guild, actor, channel.id)
        await reply_ephemeral(interaction, show.channel_allowed_text(channel.id, added))

    @channels.command(name="remove", description="Take a channel off the allow-list")
    async def channels_remove(self, interaction: Interaction, channel: ImageChannel) -> None:
        guild, actor = _ids(interaction)
        removed = await self.guild_admin.remove_channel(guild, actor, channel.id)
        still_listed = len(await self.guild_admin.channels(guild))
        text = show.channel_removed_text(channel.id, removed, still_listed)
        await reply_ephemeral(interaction, text)

    @channels.command(name="list", description="Channels where /imagine works")
    async def channels_list(self, interaction: Interaction) -> None:
        guild, _ = _ids(interaction)
        allowed = await self.guild_admin.channels(guild)
        await reply_ephemeral(interaction, embed=show.channels_embed(allowed))

    # -- members --------------------------------------------------------------------------------

    @users.command(name="ban", description="Stop a member from making images here")
    @app_commands.describe(reason="Shown to moderators only")
    async def users_ban(
        self,
        interaction: Interaction,
        member: discord.User,
        reason: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        guild, actor = _ids(interaction)
        await self.guild_admin.ban(guild, actor, member.id, reason)
        await reply_ephemeral(interaction, show.banned_text(member.id))

    @users.command(name="unban", description="Let a member make images again")
    async def users_unban(self, interaction: Interaction, member: discord.User) -> None:
        guild, actor = _ids(interaction)
        was_banned = await self.guild_admin.unban(guild, actor, member.id)
        await reply_ephemeral(interaction, show.unbanned_text(member.id, was_banned))

    @users.command(name="reset", description="Give a member their images back for today")
    async def users_reset(self, interaction: Interaction, member: discord.User) -> None:
        guild, actor = _ids(interaction)
        waived = await self.guild_admin.reset_usage(guild, actor, member.id)
        await reply_ephemeral(interaction, show.usage_reset_text(member.id, waived))

    @users.command(name="bans", description="Members who can't make images here")
    async def users_bans(self, interaction: Interaction) -> None:
        guild, _ = _ids(interaction)
        bans = await self.guild_admin.bans(guild)
        await reply_ephemeral(interaction, embed=show.bans_embed(bans))


async def setup(bot: ImagineBot) -> None:
    bot.add_dynamic_items(HistoryPageButton)
    await bot.add_cog(Admin(bot.services.guild_admin))


async def teardown(bot: ImagineBot) -> None:
    bot.remove_dynamic_items(HistoryPageButton)
