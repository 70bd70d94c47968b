"""The one vocabulary of limits: refusal reasons are built on the names moderators set."""

from __future__ import annotations

from bot.limits.admin import LIMITS
from bot.limits.names import LimitName, RefusalReason

NOT_A_MODERATORS_LIMIT = {
    RefusalReason.BOT_SPEND,
    RefusalReason.BANNED,
    RefusalReason.CHANNEL,
    RefusalReason.BLOCKED_TERM,
    RefusalReason.USER_INSTALLS_OFF,
}


def test_a_limit_refusal_carries_the_limits_own_name() -> None:
    for reason in set(RefusalReason) - NOT_A_MODERATORS_LIMIT:
        name = reason.limit_name
        assert name is not None and name.value == reason.value and name.name == reason.name


def test_every_settable_limit_that_counts_can_refuse() -> None:
    refusing = {reason.limit_name for reason in RefusalReason} - {None}
    assert refusing == set(LimitName) - {LimitName.WINDOW_MINUTES}  # the window only sizes one
    assert set(LIMITS) == set(LimitName)


def test_the_other_refusals_name_no_limit() -> None:
    assert {reason for reason in RefusalReason if reason.limit_name is None} == (
        NOT_A_MODERATORS_LIMIT
    )
