"""`/imagine-admin …`: moderators change limits and moderation rules. A thin adapter: hidden
without Manage Server and re-checked on every use; `GuildAdmin` validates and audit-logs changes,
`bot.wording.admin_presentation` words the (ephemeral, ping-free) replies."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions.checks import guild_and_actor, guild_of, is_moderator
from bot.interactions.components.admin_history import HistoryPageButton, history_page
from bot.interactions.transport.acknowledge import uses_database
from bot.interactions.transport.embeds import to_embed
from bot.interactions.transport.replies import reply_ephemeral
from bot.interactions.usage_report import UsageReplies
from bot.limits.admin import MAX_COUNT, MAX_SPEND_USD, AdminInputError, GuildAdmin, RoleLimitsInput
from bot.limits.names import LimitName
from bot.storage.repositories.guild_settings import NsfwPolicy
from bot.wording import admin_presentation as show
from bot.wording.refusals import admin_error_text

if TYPE_CHECKING:
    from bot.app.bot import ImagineBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction["ImagineBot"]
Count = app_commands.Range[int, 0, MAX_COUNT]
Word = app_commands.Range[str, 1, 100]
ImageChannel = discord.TextChannel | discord.VoiceChannel


def choices(labelled: Sequence[tuple[str, str]]) -> list[app_commands.Choice[str]]:
    """The wording's (label, value) pairs as the choices Discord offers a moderator."""
    return [app_commands.Choice(name=label, value=value) for label, value in labelled]


class Admin(commands.Cog):
    admin = uses_database(app_commands.Group(  # every subcommand reads or writes the database
        name="imagine-admin",
        description="Limits and moderation for /imagine (Manage Server)",
        default_permissions=discord.Permissions(manage_guild=True),
        guild_only=True,
        # A server command only: never installable to a member's account, never in DMs.
        allowed_installs=app_commands.AppInstallationType(guild=True, user=False),
        allowed_contexts=app_commands.AppCommandContext(
            guild=True, dm_channel=False, private_channel=False
        ),
    ))
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

    @admin.command(name="show", description="Every limit and rule for this server in one view")
    async def show_settings(self, interaction: Interaction) -> None:
        snapshot = await self.guild_admin.snapshot(guild_of(interaction))
        await reply_ephemeral(interaction, embed=to_embed(show.settings_card(snapshot)))

    @admin.command(name="usage", description="Images and estimated spend today and this month")
    async def usage(self, interaction: Interaction) -> None:
        await self.usage_replies.send(interaction, guild_of(interaction))

    @admin.command(name="history", description="Who prompted what, newest first")
    @app_commands.describe(member="Only this member's images", page="Page number (1 = newest)")
    async def history(
        self,
        interaction: Interaction,
        member: discord.User | None = None,
        page: app_commands.Range[int, 1, 10_000] = 1,
    ) -> None:
        user_id = member.id if member else None
        embed, view = await history_page(self.guild_admin, guild_of(interaction), user_id, page)
        await reply_ephemeral(interaction, embed=embed, view=view)

    @admin.command(name="nsfw", description="What happens to images flagged as NSFW")
    @app_commands.describe(policy="block (default) or spoiler")
    @app_commands.choices(policy=choices(show.NSFW_CHOICES))
    async def nsfw(self, interaction: Interaction, policy: str) -> None:
        await self.guild_admin.set_nsfw_policy(*guild_and_actor(interaction), NsfwPolicy(policy))
        await reply_ephemeral(interaction, show.nsfw_policy_text(NsfwPolicy(policy)))


    @limits.command(name="set", description="Change one limit for this server")
    @app_commands.describe(limit="Which limit", value="New value; 0 = unlimited (or no cap)")
    @app_commands.choices(limit=choices(show.LIMIT_CHOICES))
    async def limits_set(
        self,
        interaction: Interaction,
        limit: str,
        value: app_commands.Range[float, 0.0, MAX_SPEND_USD],
    ) -> None:
        name = LimitName(limit)
        change = await self.guild_admin.set_limit(*guild_and_actor(interaction), name, value)
        await reply_ephemeral(interaction, show.limit_change_text(change))

    @limits.command(name="reset", description="Back to the bot-wide default")
    @app_commands.describe(limit="Which limit, or every limit")
    @app_commands.choices(limit=choices(show.RESET_CHOICES))
    async def limits_reset(self, interaction: Interaction, limit: str) -> None:
        guild, actor = guild_and_actor(interaction)
        name = None if limit == show.ALL_LIMITS else LimitName(limit)
        changes = await self.guild_admin.reset_limit(guild, actor, name)
        await reply_ephemeral(interaction, show.limits_reset_text(changes))

    @roles.command(name="set", description="Other limits for members with this role")
    @app_commands.describe(**show.ROLE_LIMIT_OPTIONS)
    async def roles_set(
        self,
        interaction: Interaction,
        role: discord.Role,
        per_window: Count | None = None,
        concurrent: Count | None = None,
        daily: Count | None = None,
    ) -> None:
        guild, actor = guild_and_actor(interaction)
        values = RoleLimitsInput(per_window, concurrent, daily)
        await self.guild_admin.set_role(guild, actor, role.id, values)
        await reply_ephemeral(interaction, show.role_set_text(role.id, values))

    @roles.command(name="clear", description="Remove a role's limits")
    async def roles_clear(self, interaction: Interaction, role: discord.Role) -> None:
        cleared = await self.guild_admin.clear_role(*guild_and_actor(interaction), role.id)
        await reply_ephemeral(interaction, show.role_cleared_text(role.id, cleared))

    @roles.command(name="list", description="Roles with their own limits, and exempt roles")
    async def roles_list(self, interaction: Interaction) -> None:
        await self._show_roles(interaction)

    @exempt.command(name="add", description="Members with this role skip the member limits")
    async def exempt_add(self, interaction: Interaction, role: discord.Role) -> None:
        added = await self.guild_admin.add_exempt(*guild_and_actor(interaction), role.id)
        await reply_ephemeral(interaction, show.exempt_added_text(role.id, added))

    @exempt.command(name="remove", description="This role no longer skips the member limits")
    async def exempt_remove(self, interaction: Interaction, role: discord.Role) -> None:
        removed = await self.guild_admin.remove_exempt(*guild_and_actor(interaction), role.id)
        await reply_ephemeral(interaction, show.exempt_removed_text(role.id, removed))

    @exempt.command(name="list", description="Roles that skip the member limits")
    async def exempt_list(self, interaction: Interaction) -> None:
        await self._show_roles(interaction)

    async def _show_roles(self, interaction: Interaction) -> None:
        snapshot = await self.guild_admin.snapshot(guild_of(interaction))
        ceiling = self.guild_admin.defaults.ceilings.user_daily
        card = show.roles_card(snapshot.role_overrides, snapshot.exempt_roles, ceiling)
        embed = to_embed(card)
        await reply_ephemeral(interaction, embed=embed)


    @words.command(name="add", description="Refuse prompts containing this word or phrase")
    @app_commands.describe(word="A word or phrase; * matches any letters (cat* blocks catalog)")
    async def words_add(self, interaction: Interaction, word: Word) -> None:
        term, added = await self.guild_admin.add_word(*guild_and_actor(interaction), word)
        await reply_ephemeral(interaction, show.word_added_text(term, added))

    @words.command(name="remove", description="Allow this word again")
    async def words_remove(self, interaction: Interaction, word: Word) -> None:
        term, removed = await self.guild_admin.remove_word(*guild_and_actor(interaction), word)
        await reply_ephemeral(interaction, show.word_removed_text(term, removed))

    @words.command(name="list", description="Every blocked word")
    async def words_list(self, interaction: Interaction) -> None:
        terms = await self.guild_admin.words(guild_of(interaction))
        await reply_ephemeral(interaction, embed=to_embed(show.words_card(terms)))

    @channels.command(name="allow", description="Allow /imagine here (then only in listed ones)")
    async def channels_allow(self, interaction: Interaction, channel: ImageChannel) -> None:
        added = await self.guild_admin.allow_channel(*guild_and_actor(interaction), channel.id)
        await reply_ephemeral(interaction, show.channel_allowed_text(channel.id, added))

    @channels.command(name="remove", description="Take a channel off the allow-list")
    async def channels_remove(self, interaction: Interaction, channel: ImageChannel) -> None:
        removed = await self.guild_admin.remove_channel(*guild_and_actor(interaction), channel.id)
        still_listed = len(await self.guild_admin.channels(guild_of(interaction)))
        text = show.channel_removed_text(channel.id, removed, still_listed)
        await reply_ephemeral(interaction, text)

    @channels.command(name="list", description="Channels where /imagine works")
    async def channels_list(self, interaction: Interaction) -> None:
        allowed = await self.guild_admin.channels(guild_of(interaction))
        await reply_ephemeral(interaction, embed=to_embed(show.channels_card(allowed)))


    @users.command(name="ban", description="Stop a member from making images here")
    @app_commands.describe(reason="Shown to moderators only")
    async def users_ban(
        self,
        interaction: Interaction,
        member: discord.User,
        reason: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        await self.guild_admin.ban(*guild_and_actor(interaction), member.id, reason)
        await reply_ephemeral(interaction, show.banned_text(member.id))

    @users.command(name="unban", description="Let a member make images again")
    async def users_unban(self, interaction: Interaction, member: discord.User) -> None:
        was_banned = await self.guild_admin.unban(*guild_and_actor(interaction), member.id)
        await reply_ephemeral(interaction, show.unbanned_text(member.id, was_banned))

    @users.command(name="reset", description="Give a member their images back for today")
    async def users_reset(self, interaction: Interaction, member: discord.User) -> None:
        waived = await self.guild_admin.reset_usage(*guild_and_actor(interaction), member.id)
        await reply_ephemeral(interaction, show.usage_reset_text(member.id, waived))

    @users.command(name="bans", description="Members who can't make images here")
    async def users_bans(self, interaction: Interaction) -> None:
        bans = await self.guild_admin.bans(guild_of(interaction))
        await reply_ephemeral(interaction, embed=to_embed(show.bans_card(bans)))


async def setup(bot: ImagineBot) -> None:
    bot.add_dynamic_items(HistoryPageButton)
    await bot.add_cog(Admin(bot.services.guild_admin))


async def teardown(bot: ImagineBot) -> None:
    bot.remove_dynamic_items(HistoryPageButton)
