"""`/imagine-history`'s adapter: the page option, the member's own page asked for in this place,
a private answer, and deleted messages forgotten (a failure only logged)."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import discord
import pytest
from discord import AppCommandOptionType as Option

from cogs import history
from cogs.history import History
from tests.unit.cogs.conftest import (
    GUILD_ID,
    USER_ID,
    Calls,
    FakeInteraction,
    as_interaction,
    contexts,
    installs,
    options,
)


def test_history_is_declared_with_a_page_for_servers_and_members() -> None:
    command = History(Calls(), None).show_history  # type: ignore[arg-type]
    assert command.name == "imagine-history"
    assert options(command) == {"page": (Option.integer, False, 1, 10_000, False)}
    assert installs(command) == (True, True)
    assert contexts(command) == (True, True, True)


async def test_the_page_is_asked_for_this_member_in_this_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[Any, ...]] = []

    async def member_history_page(*args: Any) -> tuple[discord.Embed, None]:
        asked.append(args)
        return discord.Embed(title="page"), None

    monkeypatch.setattr(history, "member_history_page", member_history_page)
    repo, kept = Calls(), Calls(take=[])
    cog = History(repo, kept)  # type: ignore[arg-type]
    interaction = FakeInteraction()
    await cog.show_history.callback(cog, as_interaction(interaction), 3)
    assert asked == [(repo, USER_ID, GUILD_ID, 3)]
    [answer] = interaction.answers()
    assert answer.options["ephemeral"] is True and answer.options["embed"].title == "page"
    assert kept.calls == [("take", (USER_ID,), {})]


async def test_deleted_messages_are_forgotten_and_a_failure_is_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    repo = Calls()
    cog = History(repo, None)  # type: ignore[arg-type]
    await cog.on_raw_message_delete(SimpleNamespace(message_id=5))  # type: ignore[arg-type]
    await cog.on_raw_bulk_message_delete(SimpleNamespace(message_ids={6, 7}))  # type: ignore[arg-type]
    assert repo.calls == [("forget_messages", ({5},), {}), ("forget_messages", ({6, 7},), {})]

    broken = History(Calls(forget_messages=RuntimeError("database away")), None)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="cogs.history"):
        await broken.on_raw_message_delete(SimpleNamespace(message_id=8))  # type: ignore[arg-type]
    assert [r.getMessage() for r in caplog.records] == ["could not forget deleted messages"]
