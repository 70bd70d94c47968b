"""From an interaction to a started job: check, defer, admit (or refuse privately), start it.

`GenerationService.handle()` is what `/imagine` calls (`reroll()` the Re-roll button). It
1. validates the prompt and size (pure; bad input is answered ephemerally at once);
2. acknowledges at once with a public deferral ("thinking…"), before any database round trip,
   so every member is answered well inside Discord's 3 s window however loaded the bot is;
3. asks admission (limits, moderation) whether this person may generate. A refusal removes the
   public placeholder and goes to the member alone as an ephemeral follow-up (see `refuse`);
4. starts the job on the core's lifecycle (`bot.jobs.lifecycle`, tracked, so Cancel and
   shutdown work) with its Discord display (`bot.interactions.display`), which edits the one
   status message as progress changes (throttled), then into the result — the moment it is
   downloaded — a withheld-image notice, or a short friendly failure. It is never left at
   "thinking…".

Why defer first rather than pre-check in memory: limits are counted in the shared ledger (across
processes on PostgreSQL), so only a database transaction decides them exactly; an in-memory guess
would either refuse members it should admit or need the database anyway, and under a burst the
database answer may take longer than Discord's 3 s. Deferring first costs a refused member a
"thinking…" placeholder that lives for one admission (milliseconds) and is then deleted.

Beside the new job, the member's kept results (closed DMs) are offered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import discord

from bot.imaging import InvalidInputError, resolve_size, validate_prompt
from bot.interactions.display import DiscordJobDisplay, JobDisplays
from bot.interactions.kept_results import KeptResultLookups, show_kept_results
from bot.interactions.requests import bot_is_present, request_from_interaction
from bot.interactions.transport.embeds import NO_MENTIONS
from bot.interactions.transport.replies import reply_ephemeral
from bot.jobs.active import ActiveJob, ReplyRecord
from bot.jobs.edits import EditJob
from bot.jobs.lifecycle import JobLifecycle
from bot.jobs.model import JobRequest
from bot.limits.admission import Admission, AdmissionService
from bot.observability.metrics import BotMetrics
from bot.storage.reliability.outage import is_database_unavailable
from bot.storage.repositories.kept_results import KeptResults
from bot.wording.messages import (
    DATABASE_UNAVAILABLE,
    describe_error,
    describe_with_id,
    new_error_id,
)
from bot.wording.refusals import refusal_message

log = logging.getLogger(__name__)

REROLL_GONE = "I no longer have the details of this image to re-roll it."


@dataclass(frozen=True)
class GenerationCollaborators:
    """What the Discord side of generating uses, built once by `bot.app.composition`."""

    lifecycle: JobLifecycle
    displays: JobDisplays
    admissions: AdmissionService
    kept_results: KeptResults  # outcomes kept for members who could not be reached
    metrics: BotMetrics
    # Consulted before every admission: False once the SQLite file vanished under us.
    database_usable: Callable[[], bool]


class GenerationService:
    def __init__(self, collaborators: GenerationCollaborators) -> None:
        self.lifecycle = collaborators.lifecycle
        self.displays = collaborators.displays
        self.admissions = collaborators.admissions
        self.kept_results = collaborators.kept_results
        self.metrics = collaborators.metrics
        self.database_usable = collaborators.database_usable
        self.jobs = self.lifecycle.jobs  # for Cancel, in-flight metrics and tests
        self.outbox = self.lifecycle.outbox
        self._kept = KeptResultLookups(self.kept_results)
        self._side_tasks: set[asyncio.Task[None]] = set()

    # ---- entry point ---------------------------------------------------------------------------

    async def handle(
        self,
        interaction: discord.Interaction,
        prompt_text: str | None,
        size_text: str | None,
        *,
        reroll_of: int | None = None,
    ) -> None:
        try:
            prompt = validate_prompt(prompt_text)
            size = resolve_size(size_text)
        except InvalidInputError as exc:
            await reply_ephemeral(interaction, describe_error(exc) or str(exc))
            return
        if await self.acknowledge(interaction):
            await self.admit_and_start(
                interaction, request_from_interaction(interaction, prompt, size, reroll_of))

    async def reroll(self, interaction: discord.Interaction, job_id: int) -> None:
        """The Re-roll button: acknowledged first, then the original's prompt and size are read."""
        if not await self.acknowledge(interaction):
            return
        try:
            stored = await self.admissions.lookup(job_id)
        except Exception as exc:
            await self.admission_failed(interaction, exc, f"re-roll of job {job_id}")
            return
        try:
            # Written by a release with other rules, it may no longer be valid.
            prompt = validate_prompt(None if stored is None else stored.prompt)
            size = resolve_size(None if stored is None else stored.size)
        except InvalidInputError:
            await self.refuse(interaction, REROLL_GONE)
            return
        await self.admit_and_start(
            interaction, request_from_interaction(interaction, prompt, size, job_id))

    async def acknowledge(self, interaction: discord.Interaction) -> bool:
        """Answer Discord at once (pure checks only); False when there is nothing more to do."""
        if not self.database_usable():  # known without a round trip (e.g. the file vanished)
            self.metrics.admission("unavailable")
            await reply_ephemeral(interaction, DATABASE_UNAVAILABLE)
            return False
        try:
            await interaction.response.defer(thinking=True)
        except discord.HTTPException as exc:
            # Too late (over 3 s) or already answered; nothing was reserved yet.
            log.warning("could not acknowledge interaction %s: %s", interaction.id, exc)
            return False
        return True

    async def admit_and_start(
        self,
        interaction: discord.Interaction,
        request: JobRequest,
        *,
        edit: EditJob | None = None,
        parent: tuple[str, str] | None = None,
    ) -> ActiveJob | None:
        """Admit an acknowledged request and run it (refused: privately, placeholder gone);
        the running job, or None when it was not started."""
        try:
            admission = await self.admissions.admit(request)
        except Exception as exc:
            await self.admission_failed(interaction, exc, "admission")
            return None
        self.metrics.admission("allowed" if admission.allowed else "refused")
        if admission.refusal is not None:
            await self.refuse(interaction, refusal_message(admission.refusal))
            return None
        job, display = self.start(interaction, request, admission, edit=edit, parent=parent)
        # Kept results (closed DMs) are shown beside the new job, never ahead of it.
        side = asyncio.create_task(self._offer_kept_results(job, display, interaction))
        self._side_tasks.add(side)
        side.add_done_callback(self._side_tasks.discard)
        return job

    async def _offer_kept_results(
        self, job: ActiveJob, display: DiscordJobDisplay, interaction: discord.Interaction
    ) -> None:
        """Show the member the results kept for them while their DMs were closed."""
        if not await self._kept.has_results(job.request.user_id):
            return
        try:
            # Give the placeholder its first form, so the kept results follow as new messages.
            await display.first_form(self.lifecycle.waiting_update(job, None))
            await show_kept_results(interaction, self.kept_results)
        except discord.HTTPException:
            log.warning("could not show kept results to user %s", job.request.user_id,
                        exc_info=True)

    async def admission_failed(
        self, interaction: discord.Interaction, exc: Exception, where: str
    ) -> None:
        """The one case a member is told to come back later is a database that did not answer
        (never mere load); anything else is reported with an error id. Either way privately."""
        if is_database_unavailable(exc):
            self.metrics.admission("unavailable")
            log.error("%s failed, database unavailable: %s: %s", where, type(exc).__name__, exc)
            await self.refuse(interaction, DATABASE_UNAVAILABLE)
            return
        error_id = new_error_id()
        log.error("unhandled error in %s [error id %s]", where, error_id, exc_info=exc)
        await self.refuse(interaction, describe_with_id(exc, error_id))

    async def refuse(self, interaction: discord.Interaction, text: str) -> None:
        """Take back the public "thinking…" placeholder and tell the member alone.

        Discord turns the first follow-up after a public deferral into the deferred message and
        ignores its ephemeral flag (so it would be public). Deleting the placeholder first makes
        the follow-up a new message, which can be ephemeral: nothing public is left behind.
        """
        try:
            await interaction.delete_original_response()
        except discord.HTTPException as exc:
            # Cannot take the placeholder back: say it there rather than leave it "thinking…".
            log.warning("could not remove the placeholder of a refusal: %s", exc)
            with contextlib.suppress(discord.HTTPException):
                await interaction.edit_original_response(
                    content=text, allowed_mentions=NO_MENTIONS
                )
            return
        try:
            await reply_ephemeral(interaction, text)
        except discord.HTTPException as exc:
            log.warning("could not send a refusal: %s", exc)

    def start(
        self,
        interaction: discord.Interaction,
        request: JobRequest,
        admission: Admission,
        *,
        edit: EditJob | None = None,
        parent: tuple[str, str] | None = None,
    ) -> tuple[ActiveJob, DiscordJobDisplay]:
        """Run an admitted job, shown in the interaction's "thinking…" message."""
        assert admission.job_id is not None
        display = self.displays.for_interaction(
            admission.job_id, request, interaction,
            bot_present=bot_is_present(interaction), parent=parent,
        )
        reply = ReplyRecord(
            application_id=interaction.application_id,
            interaction_id=interaction.id,
            token=interaction.token,
            interaction_at=interaction.created_at,
            filesize_limit=interaction.filesize_limit,
        )
        job = self.lifecycle.start(
            admission.job_id, request, display, reply, edit=edit,
            parent_url=None if parent is None else parent[1],
        )
        return job, display

    async def results_recorded(self) -> None:
        """Wait until every delivered result so far has its message recorded (tests, close)."""
        await self.displays.results_recorded()

    async def close(self) -> None:
        """Shutdown: results being posted finish; every other job is left in the journal for
        the next start (its member told so); pending end-of-job writes get a last chance."""
        for side in list(self._side_tasks):
            side.cancel()
        await self.lifecycle.stop_jobs()
        await self._kept.close()
        await self.results_recorded()  # and where results were posted
        await self.lifecycle.close()
