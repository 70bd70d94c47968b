"""`/imagine-quota`'s adapter: declared for servers and members everywhere; asks admission for
this member's status under the right rules, answers privately, then shows kept results."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from bot.wording.cards import Card
from cogs import quota
from cogs.quota import Quota
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


@pytest.fixture
def embeds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, bool]]:
    """What `quota_card` was asked to show (status, banned); it returns a plain card."""
    shown: list[tuple[Any, bool]] = []

    def quota_card(status: Any, *, banned: bool) -> Card:
        shown.append((status, banned))
        return Card(title="quota")

    monkeypatch.setattr(quota, "quota_card", quota_card)
    return shown


def test_quota_is_declared_without_options_for_servers_and_members() -> None:
    command = Quota(Calls()).quota  # type: ignore[arg-type]
    assert command.name == "imagine-quota"
    assert options(command) == {}
    assert installs(command) == (True, True)
    assert contexts(command) == (True, True, True)


@pytest.mark.parametrize("moderator", [False, True])
async def test_in_a_server_with_the_bot_its_rules_apply(
    embeds: list[tuple[Any, bool]], moderator: bool
) -> None:
    status = SimpleNamespace(banned=True)
    admissions, kept = Calls(quota_status=status), Calls(take=[])
    cog = Quota(admissions, kept)  # type: ignore[arg-type]
    interaction = FakeInteraction(moderator=moderator)
    await cog.quota.callback(cog, as_interaction(interaction))
    assert admissions.calls == [
        ("quota_status", (GUILD_ID, USER_ID, ()), {"is_moderator": moderator}),
    ]
    assert embeds == [(status, True)]
    [answer] = interaction.answers()
    assert answer.options["ephemeral"] is True and answer.options["embed"].title == "quota"
    assert kept.calls == [("take", (USER_ID,), {})]  # kept results after the answer


async def test_where_the_bot_is_not_the_bot_wide_limits_apply(
    embeds: list[tuple[Any, bool]],
) -> None:
    admissions = Calls(quota_status=SimpleNamespace(banned=False))
    cog = Quota(admissions)  # type: ignore[arg-type]
    interaction = FakeInteraction(bot_in_guild=False, moderator=True)
    await cog.quota.callback(cog, as_interaction(interaction))
    assert admissions.calls == [("quota_status", (None, USER_ID), {})]
    assert [banned for _, banned in embeds] == [False]


async def test_setup_hands_the_cog_the_admission_service_and_kept_results() -> None:
    admissions, kept = Calls(), Calls()
    bot = RecordingBot(services=SimpleNamespace(admissions=admissions),
                       generation=SimpleNamespace(kept_results=kept))
    await quota.setup(bot)  # type: ignore[arg-type]
    [cog] = bot.cogs
    assert cog.admissions is admissions and cog.kept_results is kept
