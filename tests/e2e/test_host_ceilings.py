"""End to end: a bot offered to many servers — the host's ceilings hold against a server's
moderators (limits, roles, exemptions, "unlimited"), members are refused at the ceiling and see
it in /imagine-quota, and a spend cap too small to count is refused rather than read as none."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fakes.stack import LocalStack
from tests.e2e.stacks import StackFactory
from tests.e2e.test_admin import admin, fields, imagine_ok, imagine_refused, text_of
from tests.e2e.test_admin_members import RolesStack, fast, quota

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


@pytest.fixture
async def shared_bot(make_stack: StackFactory) -> AsyncIterator[RolesStack]:
    """A host's bot: at most 2 images per member and 3 per server each day."""
    options = fast(user_daily_quota=0, max_user_daily_quota=2, max_guild_daily_cap=3)
    async with make_stack(RolesStack, **options) as stack:
        yield stack


async def test_a_moderator_cannot_lift_members_past_the_hosts_ceiling(
    shared_bot: RolesStack,
) -> None:
    stack = shared_bot
    reply = await admin(stack, "limits set", {"limit": "user_daily", "value": 50})
    assert reply.content == (
        "Images per day (each member) can be at most 2 on this bot: its host set that ceiling "
        "for every server, so choose a value from 1 to 2 (0, unlimited, would be above it too)."
    )
    reply = await admin(stack, "limits set", {"limit": "guild_daily", "value": 0})
    assert reply.content.startswith("Images per day (whole server) can be at most 3 on this bot")
    reply = await admin(stack, "roles set", {"role": stack.artists, "daily": 100})
    assert reply.content.startswith("A role's daily can be at most 2 on this bot")
    await admin(stack, "exempt add", {"role": stack.vips})  # exemptions are allowed, but held

    shown = text_of(await admin(stack, "show"))
    assert "Images per day (each member): **2** · default · at most 2 on this bot" in shown
    assert "Images per day (whole server): **3** · default · at most 3 on this bot" in shown

    assert fields(await quota(stack, stack.dave))["Today"].startswith("**2** of 2 left")
    await imagine_ok(stack, stack.dave, "exempt, first")
    await imagine_ok(stack, stack.dave, "exempt, second")
    refusal = await imagine_refused(stack, stack.dave, "exempt, third")
    assert refusal.startswith("Sorry, you have used your 2 images for today.")

    await imagine_ok(stack, stack.alice, "the server's third image")
    refusal = await imagine_refused(stack, stack.bob, "the server's fourth")
    assert refusal.startswith("Sorry, this server has used its 3 images for today.")


@pytest.mark.stack(fixed_duration=10.0)
async def test_a_spend_cap_below_a_cent_is_refused_not_read_as_no_cap(stack: LocalStack) -> None:
    reply = await admin(stack, "limits set", {"limit": "guild_spend_usd", "value": 0.004})
    assert reply.content == (
        "Spend per day in USD (whole server) must be 0 (no cap) or at least $0.01: "
        "a smaller amount would round to no cap at all."
    )
    guild_admin = stack.services.guild_admin
    assert (await guild_admin.guild_config(stack.guild.id)).guild_daily_spend_cap_usd is None
    reply = await admin(stack, "limits set", {"limit": "guild_spend_usd", "value": 0.01})
    assert reply.content.startswith("Spend per day in USD (whole server) is now **$0.01**")
    refusal = await imagine_refused(stack, stack.alice, "two cents is over a cent")
    assert refusal.startswith("Sorry, this server has reached its spending limit for today.")
