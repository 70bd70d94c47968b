"""`/imagine-admin …`: moderators change limits and moderation rules. A thin adapter.

Hidden from members without Manage Server by default (`default_permissions`), and re-checked on
every use, since server admins can change who sees a command. Admin commands never pass through
admission, so limits, bans and the channel allow-list never lock a moderator out.
Every reply is ephemeral and pings nobody; `bot.limits.admin.GuildAdmin` validates and logs changes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions import admin_presentation as show
from bot.interactions.presentation import NO_MENTIONS
from bot.interactions.refusals import admin_error_text
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

ALL_LIMITS = "all"
LIMIT_CHOICES = [app_commands.Choice(name=s.label, value=str(n)) for n, s in LIMITS.items()]
RESET_CHOICES = [*LIMIT_CHOICES, app_commands.Choice(name="Every limit", value=ALL_LIMITS)]
NSFW_CHOICES = [
    app_commands.Choice(name="block: withhold flagged images", value=str(NsfwPolicy.BLOCK)),
    app_commands.Choice(name="spoiler: post them behind a spoiler", value=str(NsfwPolicy.SPOILER)),
]
Count = app_commands.Range[int, 0, MAX_COUNT]
ImageChannel = discord.TextChannel | discord.VoiceChannel


@dataclass(frozen=True)
class Reply:
    text: str | None = None
    embed: discord.Embed | None = None
    view: discord.ui.View | None = None


async def send(interaction: discord.Interaction, reply: Reply) -> None:
    """Ephemeral, pinging nobody; always within the first response (no deferral needed)."""
    kwargs: dict[str, Any] = {"ephemeral": True, "allowed_mentions": NO_MENTIONS}
    if reply.embed is not None:
        kwargs["embed"] = reply.embed
    if reply.view is not None:
        kwargs["view"] = reply.view
    await interaction.response.send_message(reply.text, **kwargs)


def is_moderator(interaction: discord.Interaction) -> bool:
    return interaction.guild_id is not None and interaction.permissions.manage_guild


# ---- history pages ----------------------------------------------------------------------------


class HistoryPageButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"imagine-admin:history:(?P<user>\d+):(?P<page>\d+):(?P<way>prev|next)",
):
    """Previous / Next on a history page; the page and filter live in the custom_id."""

    def __init__(self, user_id: int, page: int, way: str, *, disabled: bool = False) -> None:
        self.user_id, self.page, self.way = user_id, page, way
        super().__init__(
            discord.ui.Button(
                label="Previous" if way == "prev" else "Next",
                style=discord.ButtonStyle.secondary,
                custom_id=f"imagine-admin:history:{user_id}:{page}:{way}",
                disabled=disabled,
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(int(match["user"]), int(match["page"]), match["way"])

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        cog = (
            client.get_cog(Admin.__cog_name__)
            if isinstance(client, (commands.Bot, commands.AutoShardedBot))
            else None
        )
        if not isinstance(cog, Admin) or not is_moderator(interaction):
            await send(interaction, Reply("You don't have permission to use this here."))
            return
        embed, view = await cog.history_page(
            interaction.guild_id or 0, self.user_id or None, self.page
        )
        await interaction.response.edit_message(
            embed=embed, view=view, allowed_mentions=NO_MENTIONS
        )


def history_view(user_id: int | None, page: int, pages: int) -> discord.ui.View | None:
    if pages <= 1:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(HistoryPageButton(user_id or 0, page - 1, "prev", disabled=page <= 1))
    view.add_item(HistoryPageButton(user_id or 0, page + 1, "next", disabled=page >= pages))
    return view


# ---- the commands -----------------------------------------------------------------------------


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
    channels = app_commands.Group(
        name="channels", description="Where /imagine works", parent=admin
    )
    users = app_commands.Group(name="users", description="Bans and resets", parent=admin)

    def __init__(self, bot: ImagineBot, guild_admin: GuildAdmin) -> None:
        self.bot = bot
        self.guild_admin = guild_admin

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Run-time re-check: the command may have been made visible to anyone."""
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage()
        if not interaction.permissions.manage_guild:
            log.info("user %s was refused /imagine-admin in guild %s (no Manage Server)",
                     interaction.user.id, interaction.guild_id)
            raise app_commands.MissingPermissions(["manage_guild"])
        return True

    async def _answer(self, interaction: discord.Interaction, action: Awaitable[Reply]) -> None:
        try:
            reply = await action
        except AdminInputError as exc:
            reply = Reply(admin_error_text(exc))
        await send(interaction, reply)

    @staticmethod
    def _ids(interaction: discord.Interaction) -> tuple[int, int]:
        assert interaction.guild_id is not None  # guaranteed by interaction_check
        return interaction.guild_id, interaction.user.id

    # -- overview -------------------------------------------------------------------------------

    @admin.command(name="show", description="Every limit and rule for this server in one view")
    async def show_settings(self, interaction: discord.Interaction) -> None:
        async def run() -> Reply:
            guild, _ = self._ids(interaction)
            return Reply(embed=show.settings_embed(await self.guild_admin.snapshot(guild)))

        await self._answer(interaction, run())

    @admin.command(name="usage", description="Images and estimated spend today and this month")
    async def usage(self, interaction: discord.Interaction) -> None:
        async def run() -> Reply:
            guild, _ = self._ids(interaction)
            return Reply(embed=show.usage_embed(await self.guild_admin.usage(guild)))

        await self._answer(interaction, run())

    @admin.command(name="history", description="Who prompted what, newest first")
    @app_commands.describe(member="Only this member's images", page="Page number (1 = newest)")
    async def history(
        self,
        interaction: discord.Interaction,
        member: discord.User | None = None,
        page: app_commands.Range[int, 1, 10_000] = 1,
    ) -> None:
        async def run() -> Reply:
            guild, _ = self._ids(interaction)
            embed, view = await self.history_page(guild, member.id if member else None, page)
            return Reply(embed=embed, view=view)

        await self._answer(interaction, run())

    async def history_page(
        self, guild_id: int, user_id: int | None, page: int
    ) -> tuple[discord.Embed, discord.ui.View | None]:
        found = await self.guild_admin.history(guild_id, user_id=user_id, page=page)
        pages = show.page_count(found)
        if page > pages and found.total:
            found = await self.guild_admin.history(guild_id, user_id=user_id, page=pages)
            page = pages
        return show.history_embed(found, user_id), history_view(user_id, page, pages)

    @admin.command(name="nsfw", description="What happens to images flagged as NSFW")
    @app_commands.describe(policy="block (default) or spoiler")
    @app_commands.choices(policy=NSFW_CHOICES)
    async def nsfw(self, interaction: discord.Interaction, policy: str) -> None:
        async def run() -> Reply:
            guild, actor = self._ids(interaction)
            new = NsfwPolicy(policy)
            await self.guild_admin.set_nsfw_policy(guild, actor, new)
            if new is NsfwPolicy.SPOILER:
                return Reply("Flagged images are now posted behind a spoiler.")
            return Reply("Flagged images are now withheld outside age-restricted channels.")

        await self._answer(interaction, run())

    # -- limits ---------------------------------------------------------------------------------

    @limits.command(name="set", description="Change one limit for this server")
    @app_commands.describe(limit="Which limit", value="New value; 0 = unlimited (or no cap)")
    @app_commands.choices(limit=LIMIT_CHOICES)
    async def limits_set(
        self,
        interaction: discord.Interaction,
        limit: str,
        value: app_commands.Range[float, 0.0, MAX_SPEND_USD],
    ) -> None:
        async def run() -> Reply:
            guild, actor = self._ids(interaction)
            change = await self.guild_admin.set_limit(guild, actor, LimitName(limit), value)
            return Reply(show.limit_change_text(change))

        await self._answer(interaction, run())

    @limits.command(name="reset", description="Back to the bot-wide default")
    @app_commands.describe(limit="Which limit, or every limit")
    @app_commands.choices(limit=RESET_CHOICES)
    async def limits_reset(self, interaction: discord.Interaction, limit: str) -> None:
        async def run() -> Reply:
            guild, actor = self._ids(interaction)
            name = None if limit == ALL_LIMITS else LimitName(limit)
            changes = await self.guild_admin.reset_limit(guild, actor, name)
            return Reply(show.limits_reset_text(changes))

        await self._answer(interaction, run())

    # -- roles ----------------------------------------------------------------------------------

    @roles.command(name="set", description="Other limits for members with this role")
    @app_commands.describe(
        role="The role",
        per_window="Images per window (0 = unlimited)",
        concurrent="Jobs at once (0 = unlimited)",
        daily="Images per day (0 = unlimited)",
    )
    async def roles_set(
        self,
        interaction: discord.Interaction,
        role: discord.Role,
        per_window: Count | None = None,
        concurrent: Count | None = None,
        daily: Count | None = None,
    ) -> None:
        async def run() -> Reply:
            guild, actor = self._ids(interaction)
            values = RoleLimitsInput(per_window, concurrent, daily)
            await self.guild_admin.set_role(guild, actor, role.id, values)
            return Reply(show.role_set_text(role.id, values))

        await self._answer(interaction, run())

    @roles.command(name="clear", description="Remove a role's limits")
    async def roles_clear(self, interaction: discord.Interaction, role: discord.Role) -> None:
        async def run() -> Reply:
            guild, actor = self._ids(interaction)
            if await self.guild_admin.clear_role(guild, actor, role.id):
                return Reply(f"{role.mention} follows the server's limits again.")
            return Reply(f"{role.mention} had no limits of its own.")

        await self._answer(interaction, run())

    @roles.command(name="list", description="Roles with their own limits, and exempt roles")
    async def roles_list(self, interaction: discord.Interaction) -> None:
        async def run() -> Reply:
            guild, _ = self._ids(interaction)
            snapshot = await self.guild_admin.snapshot(guild)
            return Reply(embed=show.roles_embed(snapshot.role_overrides, snapshot.exempt_roles))

        await self._answer(interaction, run())

    # -- exempt roles ---------------------------------------------------------------------------

    @exempt.command(name="add", description="Members with this role skip the member limits")
    async def exempt_add(self, interaction: discord.Interaction, role: discord.Role) -> None:
        async def run() -> Reply:
            guild, actor = self._ids(interaction)
            added = await self.guild_admin.add_exempt(guild, actor, role.id)
            if added:
                return Reply(
                    f"Members with {role.mention} now skip the per-member limits "
                    "(server-wide limits and spend caps still apply)."
                )
            return Reply(f"{role.mention} was already exempt.")

        await self._answer(interaction, run())

    @exempt.command(name="remove", description="This role no longer skips the member limits")
    async def exempt_remove(self, interaction: discord.Interaction, role: discord.Role) -> None:
        async def run() -> Reply:
            guild, actor = self._ids(interaction)
            if await self.guild_admin.remove_exempt(guild, actor, role.id):
                return Reply(f"{role.mention} is no longer exempt.")
            return Reply(f"{role.mention} was not exempt.")

        await self._answer(interaction, run())

    @exempt.command(name="list", description="Roles that skip the member limits")
    async def exempt_list(self, interaction: discord.Interaction) -> None:
        async def run() -> Reply:
            guild, _ = self._ids(interaction)
            snapshot = await self.guild_admin.snapshot(guild)
            return Reply(embed=show.roles_embed(snapshot.role_overrides, snapshot.exempt_roles))

        await self._answer(interaction, run())

    # -- blocked words --------------------------------------------------------------------------

    @words.command(name="add", description="Refuse prompts containing this word or phrase")
    @app_commands.describe(word="A word or phrase; * matches any letters (cat* blocks catalog)")
    async def words_add(
        self, interaction: discord.Interaction, word: app_commands.Range[str, 1, 100]
    ) -> None:
        async def run() -> Reply:
            guild, actor = self._ids(interaction)
            term, added = await self.guild_admin.add_word(guild, actor, word)
            shown = show.escape(term, 100)
            return Reply(f"Blocked `{shown}`." if added else f"`{shown}` was already blocked.")

        await self._answer(interaction, run())

    @words.command(name="remove", description="Allow this word again")
    async def words_remove(
        self, interaction: discord.Interaction, word: app_commands.Range[str, 1, 100]
    ) -> None:
        async def run() -> Reply:
            guild, actor = self._ids(interaction)
            term, removed = await self.guild_admin.remove_word(guild, actor, word)
            shown = show.escape(term, 100)
            return Reply(f"Unblocked `{shown}`." if removed else f"`{shown}` was not blocked.")

        await self._answer(interaction, run())

    @words.command(name="list", description="Every blocked word")
    async def words_list(self, interaction: discord.Interaction) -> None:
        async def run() -> Reply:
            guild, _ = self._ids(interaction)
            return Reply(embed=show.words_embed(await self.guild_admin.words(guild)))

        await self._answer(interaction, run())

    # -- channels -------------------------------------------------------------------------------

    @channels.command(name="allow", description="Allow /imagine here (then only in listed ones)")
    async def channels_allow(
        self, interaction: discord.Interaction, channel: ImageChannel
    ) -> None:
        async def run() -> Reply:
            guild, actor = self._ids(interaction)
            if await self.guild_admin.allow_channel(guild, actor, channel.id):
                return Reply(f"/imagine works in {channel.mention} (and other listed channels).")
            return Reply(f"{channel.mention} was already allowed.")

        await self._answer(interaction, run())

    @channels.command(name="remove", description="Take a channel off the allow-list")
    async def channels_remove(
        self, interaction: discord.Interaction, channel: ImageChannel
    ) -> None:
        async def run() -> Reply:
            guild, actor = self._ids(interaction)
            if not await self.guild_admin.remove_channel(guild, actor, channel.id):
                return Reply(f"{channel.mention} was not on the allow-list.")
            if await self.guild_admin.channels(guild):
                return Reply(f"/imagine no longer works in {channel.mention}.")
            return Reply("The allow-list is empty: /imagine works in every channel again.")

        await self._answer(interaction, run())

    @channels.command(name="list", description="Channels where /imagine works")
    async def channels_list(self, interaction: discord.Interaction) -> None:
        async def run() -> Reply:
            guild, _ = self._ids(interaction)
            return Reply(embed=show.channels_embed(await self.guild_admin.channels(guild)))

        await self._answer(interaction, run())

    # -- members --------------------------------------------------------------------------------

    @users.command(name="ban", description="Stop a member from making images here")
    @app_commands.describe(reason="Shown to moderators only")
    async def users_ban(
        self,
        interaction: discord.Interaction,
        member: discord.User,
        reason: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        async def run() -> Reply:
            guild, actor = self._ids(interaction)
            await self.guild_admin.ban(guild, actor, member.id, reason)
            return Reply(f"{member.mention} can no longer make images in this server.")

        await self._answer(interaction, run())

    @users.command(name="unban", description="Let a member make images again")
    async def users_unban(self, interaction: discord.Interaction, member: discord.User) -> None:
        async def run() -> Reply:
            guild, actor = self._ids(interaction)
            if await self.guild_admin.unban(guild, actor, member.id):
                return Reply(f"{member.mention} can make images again.")
            return Reply(f"{member.mention} was not banned.")

        await self._answer(interaction, run())

    @users.command(name="reset", description="Give a member their images back for today")
    async def users_reset(self, interaction: discord.Interaction, member: discord.User) -> None:
        async def run() -> Reply:
            guild, actor = self._ids(interaction)
            waived = await self.guild_admin.reset_usage(guild, actor, member.id)
            return Reply(
                f"Reset {member.mention}: {waived} image{'' if waived == 1 else 's'} no longer "
                "count against their limits (they still count as spend)."
            )

        await self._answer(interaction, run())

    @users.command(name="bans", description="Members who can't make images here")
    async def users_bans(self, interaction: discord.Interaction) -> None:
        async def run() -> Reply:
            guild, _ = self._ids(interaction)
            return Reply(embed=show.bans_embed(await self.guild_admin.bans(guild)))

        await self._answer(interaction, run())


async def setup(bot: ImagineBot) -> None:
    bot.add_dynamic_items(HistoryPageButton)
    await bot.add_cog(Admin(bot, bot.services.guild_admin))


async def teardown(bot: ImagineBot) -> None:
    bot.remove_dynamic_items(HistoryPageButton)
