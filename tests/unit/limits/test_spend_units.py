"""A positive cap never rounds to "no cap": moderators' spend caps in cents, the host's amounts
in micro-dollars, each refused below its smallest unit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import FIELDS, SMALLEST_USD, SettingsError, settings_from_mapping
from bot.limits.admin import (
    MAX_SPEND_USD,
    SMALLEST_SPEND_USD,
    AdminInputError,
    AdminProblem,
    parse_limit_value,
)
from bot.limits.names import LimitName
from bot.usage import MICRO, usd_to_micro
from bot.wording.refusals import admin_error_text

USD_SETTINGS = [f.env for f in FIELDS if f.kind == "usd"]


def test_every_dollar_setting_is_checked_for_its_unit() -> None:
    assert set(USD_SETTINGS) == {
        "PRICE_PER_IMAGE_USD", "PRICE_PER_EDIT_USD", "GUILD_DAILY_SPEND_CAP_USD",
        "BOT_DAILY_SPEND_CAP_USD", "MAX_GUILD_DAILY_SPEND_CAP_USD",
    }
    assert SMALLEST_USD == 1 / MICRO  # the settings' unit is the ledger's


# ---- moderators: cents ----------------------------------------------------------------------


@pytest.mark.parametrize("value", [0.004, 0.001, 0.009999, 1e-9])
def test_a_spend_cap_below_a_cent_is_refused(value: float) -> None:
    with pytest.raises(AdminInputError) as refused:
        parse_limit_value(LimitName.GUILD_SPEND_USD, value)
    assert refused.value.problem is AdminProblem.SPEND_BELOW_A_CENT
    assert admin_error_text(refused.value) == (
        "Spend per day in USD (whole server) must be 0 (no cap) or at least $0.01: "
        "a smaller amount would round to no cap at all."
    )


def test_a_cent_is_the_smallest_spend_cap_and_zero_is_no_cap() -> None:
    assert parse_limit_value(LimitName.GUILD_SPEND_USD, SMALLEST_SPEND_USD) == 0.01
    assert parse_limit_value(LimitName.GUILD_SPEND_USD, 0.014) == 0.01
    assert parse_limit_value(LimitName.GUILD_SPEND_USD, 0) == 0


@given(st.floats(min_value=0, max_value=MAX_SPEND_USD, allow_nan=False))
def test_any_positive_cap_a_moderator_sets_stays_positive_in_micro_dollars(value: float) -> None:
    try:
        parsed = parse_limit_value(LimitName.GUILD_SPEND_USD, value)
    except AdminInputError as refused:
        assert refused.problem is AdminProblem.SPEND_BELOW_A_CENT and 0 < value < 0.01
        return
    assert (usd_to_micro(parsed) > 0) == (value > 0)


# ---- the host: micro-dollars ----------------------------------------------------------------


@pytest.mark.parametrize("env", USD_SETTINGS)
def test_a_host_amount_below_one_micro_dollar_is_refused_naming_the_setting(env: str) -> None:
    with pytest.raises(SettingsError) as refused:
        settings_from_mapping({env: "0.0000004"})
    [problem] = refused.value.problems
    assert problem.startswith(f"{env}='0.0000004' is below the smallest amount counted")
    assert "set 0 or at least 0.000001" in problem


@pytest.mark.parametrize("env", USD_SETTINGS)
def test_one_micro_dollar_is_the_smallest_host_amount(env: str) -> None:
    attr = env.lower()
    assert usd_to_micro(getattr(settings_from_mapping({env: "0.000001"}), attr)) == 1
    assert getattr(settings_from_mapping({env: "0.004"}), attr) == 0.004
    assert getattr(settings_from_mapping({env: "0"}), attr) == 0


def test_not_a_number_is_refused() -> None:
    with pytest.raises(SettingsError) as refused:
        settings_from_mapping({"BOT_DAILY_SPEND_CAP_USD": "nan"})
    assert refused.value.problems == ["BOT_DAILY_SPEND_CAP_USD='nan' must be a number"]


@given(st.floats(min_value=0, max_value=100, allow_nan=False), st.sampled_from(USD_SETTINGS))
def test_any_positive_amount_the_host_sets_stays_positive_in_micro_dollars(
    value: float, env: str
) -> None:
    try:
        settings = settings_from_mapping({env: repr(value)})
    except SettingsError:
        assert 0 < value < SMALLEST_USD
        return
    assert (usd_to_micro(getattr(settings, env.lower())) > 0) == (value > 0)
