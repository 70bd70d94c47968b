"""Buttons on job messages. Their state lives in the `custom_id`, so they work after a restart.

Custom ids (each well under Discord's 100-character limit):
- `imagine:cancel:<job_id>:<owner_id>`  — while a job is queued or running
- `imagine:reroll:<job_id>`             — same prompt and size, under the same checks
- `imagine:edit:<job_id>`               — a modal "What should change?", then an edit of the image
- `imagine:remix:<job_id>`              — a modal with the prompt to change, then a new image
- `imagine:delete:<job_id>:<owner_id>`  — remove the result
Cancel and Delete are for the requester or a member with Manage Messages. The Edit and Remix
modals live only until they are submitted (or the bot restarts: the member clicks again).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any, ClassVar, Self

import discord

from bot.imaging import MAX_PROMPT_CHARS
from bot.interactions.checks import may_manage_job
from bot.interactions.edit_flow import NO_IMAGE_HERE, RESULT_GONE, EditFlows, ParentImage
from bot.interactions.transport.replies import reply_ephemeral, report_error
from bot.storage.reliability.outage import is_database_unavailable
from bot.wording.messages import DATABASE_UNAVAILABLE

if TYPE_CHECKING:
    from bot.app.bot import ImagineBot

# An open modal is remembered this long (seconds) for its submission, then forgotten.
MODAL_TIMEOUT = 30 * 60
# Remix reads the original prompt before its modal, which must answer within Discord's 3 s.
REMIX_LOOKUP_TIMEOUT = 2.0

log = logging.getLogger(__name__)


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


class EditButton(_JobButton, template=r"imagine:edit:(?P<job>\d+)"):
    verb, label, style, emoji = "edit", "Edit", discord.ButtonStyle.secondary, "🖌️"
    owned = False  # anyone allowed to generate may edit

    async def act(self, interaction: discord.Interaction) -> None:
        # The click's copy of the message carries a freshly signed attachment URL.
        parent = ParentImage.of_message(self.job_id, interaction.message)
        if parent is None:
            await reply_ephemeral(interaction, NO_IMAGE_HERE)
            return
        await interaction.response.send_modal(EditModal(parent))


class RemixButton(_JobButton, template=r"imagine:remix:(?P<job>\d+)"):
    verb, label, style, emoji = "remix", "Remix", discord.ButtonStyle.secondary, "🔀"
    owned = False

    async def act(self, interaction: discord.Interaction) -> None:
        # The modal must be the first answer, so the prompt is read before it (one indexed read),
        # and a stalled database must not use up Discord's 3 s: past the bound, say so instead.
        lookup = _bot(interaction).generation.admissions.lookup(self.job_id)
        try:
            stored = await asyncio.wait_for(lookup, REMIX_LOOKUP_TIMEOUT)
        except Exception as exc:
            if not isinstance(exc, TimeoutError) and not is_database_unavailable(exc):
                raise
            log.warning("remix of job %s: its prompt could not be read in time (%s)",
                        self.job_id, type(exc).__name__)
            await reply_ephemeral(interaction, DATABASE_UNAVAILABLE)
            return
        if stored is None or not stored.prompt or interaction.message is None:
            await reply_ephemeral(interaction, RESULT_GONE)
            return
        await interaction.response.send_modal(
            RemixModal(self.job_id, stored.prompt, interaction.message.jump_url)
        )


class EditModal(discord.ui.Modal, title="Edit this image"):
    instruction: discord.ui.TextInput[EditModal] = discord.ui.TextInput(
        label="What should change?",
        style=discord.TextStyle.paragraph,
        placeholder="e.g. make it night time, add a red umbrella",
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
    )

    def __init__(self, parent: ParentImage) -> None:
        super().__init__(timeout=MODAL_TIMEOUT)
        self.parent = parent

    async def on_submit(self, interaction: discord.Interaction) -> None:
        try:
            await _flows(interaction).edit_result(interaction, self.parent, self.instruction.value)
        except Exception as exc:
            await report_error(interaction, exc, "edit modal")


class RemixModal(discord.ui.Modal, title="Remix this image"):
    def __init__(self, job_id: int, prompt: str, jump_url: str) -> None:
        super().__init__(timeout=MODAL_TIMEOUT)
        self.job_id = job_id
        self.jump_url = jump_url
        self.prompt: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
            label="Prompt",
            style=discord.TextStyle.paragraph,
            default=prompt[:MAX_PROMPT_CHARS],
            min_length=1,
            max_length=MAX_PROMPT_CHARS,
        )
        self.add_item(self.prompt)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        try:
            await _flows(interaction).remix(
                interaction, self.job_id, self.prompt.value, self.jump_url)
        except Exception as exc:
            await report_error(interaction, exc, "remix modal")


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
    view.add_item(EditButton(job_id))
    view.add_item(RemixButton(job_id))
    view.add_item(DeleteButton(job_id, owner_id))
    return view


DYNAMIC_ITEMS = (CancelButton, RerollButton, EditButton, RemixButton, DeleteButton)


def _bot(interaction: discord.Interaction) -> ImagineBot:
    from bot.app.bot import ImagineBot  # imported here: the app module imports this one

    return ImagineBot.of(interaction)


def _flows(interaction: discord.Interaction) -> EditFlows:
    bot = _bot(interaction)
    return EditFlows(bot.generation, bot.settings)
