"""Shared by the cogs' tests: a stand-in interaction and a recording service, no network.

The cogs are thin adapters, so their tests read the real discord.py app-command objects (names,
options, where they may be installed) and call a command's callback with `FakeInteraction`,
checking what reached the service (`Calls`) and what the member was answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import discord
import pytest
from discord import app_commands

GUILD_ID = 4242
USER_ID = 77


@dataclass
class Sent:
    content: str | None
    options: dict[str, Any]


@dataclass
class FakeResponse:
    sent: list[Sent] = field(default_factory=list)

    def is_done(self) -> bool:
        return bool(self.sent)

    async def send_message(self, content: str | None = None, **options: Any) -> None:
        self.sent.append(Sent(content, options))


@dataclass
class FakeFollowup:
    sent: list[Sent] = field(default_factory=list)

    async def send(self, content: Any = None, **options: Any) -> None:
        self.sent.append(Sent(content, options))


class FakeInteraction:
    """What the adapters read of a `discord.Interaction`: where, who, with which permissions,
    and the answers they sent (`response.sent`, `followup.sent`)."""

    def __init__(
        self, *, guild_id: int | None = GUILD_ID, moderator: bool = False, bot_in_guild: bool = True
    ) -> None:
        self.guild_id = guild_id
        self.user = SimpleNamespace(id=USER_ID, roles=[])
        self.channel: object = None
        self.permissions = discord.Permissions(manage_guild=moderator)
        self.extras: dict[str, Any] = {}
        self.response = FakeResponse()
        self.followup = FakeFollowup()
        guild = SimpleNamespace(id=guild_id)
        self.client = SimpleNamespace(get_guild=lambda gid: guild if bot_in_guild else None)
        # Discord's own fields on where it happened: a server's channel, else the bot's DM;
        # authorised by the server's install where the bot is, else by the member's own.
        in_server = guild_id is not None
        self.context = app_commands.AppCommandContext(guild=in_server, dm_channel=not in_server)
        self._integration_owners = (
            {0: guild_id or 0} if bot_in_guild or not in_server else {1: USER_ID})

    def answers(self) -> list[Sent]:
        return [*self.response.sent, *self.followup.sent]


class Calls:
    """A service stand-in: every awaited method call is recorded; `returns[name]` answers it."""

    def __init__(self, **returns: Any) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.returns = returns

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        async def method(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            answer = self.returns.get(name)
            if isinstance(answer, BaseException):
                raise answer
            return answer

        return method


class RecordingBot(SimpleNamespace):
    """What a cog's `setup`/`teardown` touch of the bot: the cogs added, the dynamic items
    (persistent buttons) registered and removed; other attributes are given as keywords."""

    def __init__(self, **attributes: Any) -> None:
        super().__init__(**attributes)
        self.cogs: list[Any] = []
        self.added_items: list[Any] = []
        self.removed_items: list[Any] = []

    async def add_cog(self, cog: Any) -> None:
        self.cogs.append(cog)

    def add_dynamic_items(self, *items: Any) -> None:
        self.added_items.extend(items)

    def remove_dynamic_items(self, *items: Any) -> None:
        self.removed_items.extend(items)


def as_interaction(fake: FakeInteraction) -> discord.Interaction[Any]:
    return fake  # type: ignore[return-value]


def options(command: app_commands.Command[Any, ..., Any]) -> dict[str, tuple[Any, ...]]:
    """Each option as Discord is told it: (type, required, min, max, autocomplete)."""
    return {
        p.name: (p.type, p.required, p.min_value, p.max_value, p.autocomplete)
        for p in command.parameters
    }


def installs(command: Any) -> tuple[bool | None, bool | None] | None:
    """(server install, member install) a command declares; None: the bot's defaults."""
    declared = command.allowed_installs
    return None if declared is None else (declared.guild, declared.user)


def contexts(command: Any) -> tuple[bool | None, ...] | None:
    """(server, bot DM, group DM / other DM) a command may be used in; None: the defaults."""
    declared = command.allowed_contexts
    if declared is None:
        return None
    return (declared.guild, declared.dm_channel, declared.private_channel)


@pytest.fixture
def interaction() -> FakeInteraction:
    return FakeInteraction()
