"""A control API for driving a fake Discord that runs in another process (benchmarks).

Installed on the fake's own server under `/_control/`, apart from Discord's routes (which all
live under `/api/v10`). Every time is the fake's clock, `time.monotonic()`; on Linux that clock
is system-wide, so other processes can compare their own `time.monotonic()` readings with it.

- `GET /_control/status` → `{"bot_connections", "commands", "guilds", "now"}`.
- `POST /_control/imagine` with `{"jobs": [{"prompt", "size"?}, …], "interval": seconds}`: a
  fresh member per job runs `/imagine` (INTERACTION_CREATE over the gateway), one every
  `interval` seconds on a fixed schedule (0 = a burst, as fast as the gateway takes them);
  answers once all are sent: `{"sent": [{"interaction_id", "member_id", "sent_at"}, …]}`.
- `GET /_control/summary` → counts only (cheap to poll while waiting): how many interactions
  are unacknowledged, refused, admitted, delivered, failed and still running.
- `GET /_control/report` → one record per interaction (`interaction_record`) plus totals:
  REST calls, calls no interaction can be blamed for, 429s sent, and the requests that broke
  Discord's OpenAPI spec (`spec_violations`, a count, and `spec_violations_first`, the first
  `SPEC_VIOLATIONS_SHOWN` as `fakes.discord.spec_check` prints them): the in-process tests'
  teardown check (tests/conftest.py `discord_spec`) cannot see a fake in another process.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from fakes.discord.models import (
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    JSON,
    FakeChannel,
    FakeGuild,
    FakeMessage,
    RecordedCall,
)
from fakes.discord.server import FakeDiscord
from fakes.discord.state import FakeInteraction

CONTROL_PREFIX: Final = "/_control"
# A report names this many spec violations in full; a broken request usually repeats per job.
SPEC_VIOLATIONS_SHOWN: Final = 5
# What a record's `outcome` can be.
UNACKNOWLEDGED, REFUSED, RUNNING, DELIVERED, FAILED = (
    "unacknowledged", "refused", "running", "delivered", "failed")


@dataclass(frozen=True)
class World:
    """Where the benchmark's members live: guilds, each with one channel."""

    guilds: tuple[FakeGuild, ...]
    channels: tuple[FakeChannel, ...]


def build_world(fake: FakeDiscord, guilds: int) -> World:
    """`guilds` guilds with a channel `#art` each (before the bot connects: GUILD_CREATE)."""
    made = [fake.add_guild(f"Load Guild {index + 1}") for index in range(guilds)]
    return World(tuple(made), tuple(fake.add_channel(guild, "art") for guild in made))


class FakeDiscordControl:
    """The `/_control/` routes for one fake and its world."""

    def __init__(self, fake: FakeDiscord, world: World) -> None:
        self.fake = fake
        self.world = world
        self._members_made = 0

    def install(self, app: web.Application) -> None:
        app.router.add_get(CONTROL_PREFIX + "/status", self._status)
        app.router.add_post(CONTROL_PREFIX + "/imagine", self._imagine)
        app.router.add_get(CONTROL_PREFIX + "/summary", self._summary)
        app.router.add_get(CONTROL_PREFIX + "/report", self._report)

    # -- routes ----------------------------------------------------------------------------

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response({
            "now": self.fake.clock(),
            "bot_connections": len(self.fake.gateway.connections),
            "commands": [command["name"] for command in self.fake.global_commands],
            "guilds": [str(guild.id) for guild in self.world.guilds],
        })

    async def _imagine(self, request: web.Request) -> web.Response:
        body = await request.json()
        jobs: list[JSON] = list(body.get("jobs") or [])
        interval = float(body.get("interval") or 0.0)
        return web.json_response({"sent": await self.imagine(jobs, interval)})

    async def _summary(self, request: web.Request) -> web.Response:
        counts = Counter(outcome_of(self.fake, i) for i in self.fake.interactions.values())
        return web.json_response({"now": self.fake.clock(), "outcomes": dict(counts)})

    async def _report(self, request: web.Request) -> web.Response:
        return web.json_response(self.report())

    # -- playing members -------------------------------------------------------------------

    async def imagine(self, jobs: list[JSON], interval: float) -> list[JSON]:
        """Each job from a new member, spread over the world's channels round robin."""
        targets = []
        for job in jobs:
            index = self._members_made
            self._members_made += 1
            channel = self.world.channels[index % len(self.world.channels)]
            guild = self.world.guilds[index % len(self.world.guilds)]
            member = self.fake.add_member(guild, f"member{index}")
            options: JSON = {"prompt": str(job["prompt"])}
            if job.get("size"):
                options["size"] = str(job["size"])
            targets.append((channel, member, options))
        sent: list[JSON] = []
        start = self.fake.clock()
        for position, (channel, member, options) in enumerate(targets):
            if interval > 0:
                delay = start + position * interval - self.fake.clock()
                if delay > 0:
                    await asyncio.sleep(delay)
            interaction = await self.fake.invoke_slash(channel, member, "imagine", options)
            sent.append({
                "interaction_id": str(interaction.id),
                "member_id": str(member.id),
                "sent_at": interaction.created_at,
            })
        return sent

    # -- reading back ----------------------------------------------------------------------

    def report(self) -> JSON:
        calls_by_interaction = self._calls_by_interaction()
        records = [
            interaction_record(self.fake, interaction, calls_by_interaction.get(interaction.id, []))
            for interaction in self.fake.interactions.values()
        ]
        attributed = sum(len(calls) for calls in calls_by_interaction.values())
        return {
            "now": self.fake.clock(),
            "calls": len(self.fake.calls),
            "unattributed_calls": len(self.fake.calls) - attributed,
            "calls_by_route": dict(Counter(f"{c.method} {c.route}" for c in self.fake.calls)),
            "rate_limited": self.fake.rate_limited_count,
            "rate_limit_exhausted": self.fake.rate_limit_exhausted_count,
            "spec_violations": len(self.fake.spec_violations),
            "spec_violations_first": [
                str(violation) for violation in self.fake.spec_violations[:SPEC_VIOLATIONS_SHOWN]
            ],
            "interactions": records,
        }

    def _calls_by_interaction(self) -> dict[int, list[RecordedCall]]:
        """REST calls that name an interaction (callback) or its token (webhook routes)."""
        by_token = {i.token: i.id for i in self.fake.interactions.values()}
        found: dict[int, list[RecordedCall]] = {}
        for call in self.fake.calls:
            parts = call.path.strip("/").split("/")
            owner: int | None = None
            if len(parts) >= 3 and parts[0] == "interactions" and parts[1].isdigit():
                owner = int(parts[1])
            elif len(parts) >= 3 and parts[0] == "webhooks":
                owner = by_token.get(parts[2])
            if owner is not None:
                found.setdefault(owner, []).append(call)
        return found


def outcome_of(fake: FakeDiscord, interaction: FakeInteraction) -> str:
    """Where an interaction stands, as the member sees it."""
    if interaction.response_type is None:
        return UNACKNOWLEDGED
    message = interaction.original_message()
    if interaction.ephemeral or interaction.response_type == CHANNEL_MESSAGE:
        return REFUSED  # /imagine answers with a message only to refuse
    if message is not None and message.deleted and interaction.private_reply() is not None:
        return REFUSED  # deferred, then the placeholder taken back and the member told alone
    if interaction.response_type != DEFERRED_CHANNEL_MESSAGE or message is None:
        return RUNNING
    if message.attachments:
        return DELIVERED
    if not message.loading and not message.components:
        return FAILED  # failures, cancellations and interruptions drop the Cancel button
    return RUNNING


def _text_of(message: FakeMessage | None) -> str:
    if message is None:
        return ""
    if message.content:
        return message.content
    for embed in message.embeds:
        text = str(embed.get("description") or embed.get("title") or "")
        if text:
            return text
    return ""


def interaction_record(
    fake: FakeDiscord, interaction: FakeInteraction, calls: list[RecordedCall]
) -> JSON:
    """Times (the fake's clock) and outcome of one `/imagine` interaction."""
    message = interaction.original_message()
    outcome = outcome_of(fake, interaction)
    if outcome == REFUSED:
        message = interaction.private_reply() or message
    record: dict[str, Any] = {
        "interaction_id": str(interaction.id),
        "member_id": str(interaction.member.id),
        "prompt": _option(interaction.data, "prompt"),
        "size": _option(interaction.data, "size"),
        "sent_at": interaction.created_at,
        "acknowledged_at": interaction.acknowledged_at,
        "response_type": interaction.response_type,
        "ephemeral": interaction.ephemeral,
        "outcome": outcome,
        "text": _text_of(message) if outcome in (REFUSED, FAILED) else "",
        "rest_calls": len(calls),
        "rate_limited": sum(1 for c in calls if c.status == 429),
        "edits": len(message.edits) if message is not None else 0,
        "upload_started_at": None,
        "delivered_at": None,
        "attachment": None,
    }
    if outcome == DELIVERED and message is not None:
        edit = next((e for e in message.edits if e.filenames), None)
        upload = next(
            (c for c in calls if c.files and c.status is not None and c.status < 300), None
        )
        attachment = message.attachments[0]
        record |= {
            "delivered_at": edit.at if edit is not None else None,
            "upload_started_at": upload.at if upload is not None else None,
            "attachment": {"filename": attachment.filename, "size": attachment.size},
        }
    return record


def _option(data: JSON, name: str) -> str | None:
    for option in data.get("options") or []:
        if option.get("name") == name:
            return str(option.get("value"))
    return None
