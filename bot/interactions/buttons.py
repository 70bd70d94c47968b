"""Buttons on job messages. Their state lives in the `custom_id`, so they work after a restart.

Custom ids (each well under Discord's 100-character limit):
- `imagine:cancel:<job_id>:<owner_id>`  — while a job is queued or running
- `imagine:reroll:<job_id>`             — same prompt and size, under the same checks
- `imagine:delete:<job_id>:<owner_id>`  — remove the result
Cancel and Delete are for the requester or a member with Manage Messages.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Self

import discord

from bot.interactions.checks import may_manage_job
from bot.interactions.replies import reply_ephemeral, report_error

if TYPE_CHECKING:
    from bot.interactions.app import ImagineBot


class _JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"(?!)"):
    """A button whose state is `imagine:<verb>:<job_id>[:<owner_id>]`, parsed back on each click.

    Subclasses set the look and their own `template`; this base's template matches nothing, so
    only the subclasses are dispatched. Failures in `act` reach the member as a friendly line
    with an error id, instead of Discord's bare "This interaction failed" (say the database is
    briefly unreachable during a Re-roll).
    """

    verb: ClassVar[str]
    label: ClassVar[str]
    style: ClassVar[discord.ButtonStyle]
    emoji: ClassVar[str]
    owned: ClassVar[bool] = True  # the owner's id is part of the custom id

    def __init__(self, job_id: int, owner_id: int = 0) -> None:
        self.job_id = job_id
        self.owner_id = owner_id
        owner = f":{owner_id}" if self.owned else ""
        super().__init__(
            discord.ui.Button(
                label=self.label,
                style=self.style,
                emoji=self.emoji,
                custom_id=f"imagine:{self.verb}:{job_id}{owner}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        owner = match.groupdict().get("owner")
        return cls(int(match["job"]), int(owner) if owner else 0)

    async def callback(self, interaction: discord.Interaction) -> None:
        if self.owned and not may_manage_job(interaction, self.owner_id):
            await reply_ephemeral(
                interaction, f"Only the person who asked, or a moderator, can {self.verb} this."
            )
            return
        try:
            await self.act(interaction)
        except Exception as exc:
            await report_error(interaction, exc, f"button {self.custom_id}")

    async def act(self, interaction: discord.Interaction) -> None:
        raise NotImplementedError


class CancelButton(_JobButton, template=r"imagine:cancel:(?P<job>\d+):(?P<owner>\d+)"):
    verb, label, style, emoji = "cancel", "Cancel", discord.ButtonStyle.secondary, "🛑"

    async def act(self, interaction: discord.Interaction) -> None:
        if _bot(interaction).generation.jobs.cancel(self.job_id, interaction.user.display_name):
            await interaction.response.defer()  # the job itself edits the message to "Cancelled"
        else:
            await reply_ephemeral(interaction, "This job is no longer running.")


class RerollButton(_JobButton, template=r"imagine:reroll:(?P<job>\d+)"):
    verb, label, style, emoji = "reroll", "Re-roll", discord.ButtonStyle.primary, "🎲"
    owned = False  # anyone allowed to generate may re-roll

    async def act(self, interaction: discord.Interaction) -> None:
        # Acknowledged before the ledger is read: the lookup is a database round trip.
        await _bot(interaction).generation.reroll(interaction, self.job_id)


class DeleteButton(_JobButton, template=r"imagine:delete:(?P<job>\d+):(?P<owner>\d+)"):
    verb, label, style, emoji = "delete", "Delete", discord.ButtonStyle.danger, "🗑️"

    async def act(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await interaction.delete_original_response()
        # The owner deleted their image: the ledger keeps the row (it counted) but not the prompt.
        if interaction.user.id == self.owner_id:
            await _bot(interaction).generation.admissions.blank_prompt(self.job_id)


def running_view(job_id: int, owner_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id, owner_id))
    return view


def finished_view(job_id: int, owner_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(RerollButton(job_id))
    view.add_item(DeleteButton(job_id, owner_id))
    return view


DYNAMIC_ITEMS = (CancelButton, RerollButton, DeleteButton)


def _bot(interaction: discord.Interaction) -> ImagineBot:
    from bot.interactions.app import ImagineBot  # imported here: the app module imports this one

    return ImagineBot.of(interaction)
