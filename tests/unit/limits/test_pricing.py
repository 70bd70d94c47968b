"""Every kind of job is one image; only an edit has its own price."""

from __future__ import annotations

import pytest

from bot.config import Settings, load_settings
from bot.jobs.model import JobKind
from bot.limits.pricing import IMAGES_PER_JOB, cost_microusd, price_for
from bot.usage import MICRO


def test_defaults_price_an_edit_like_an_image() -> None:
    settings = Settings()
    assert price_for(JobKind.EDIT, settings) == price_for(JobKind.GENERATE, settings) == 0.02
    assert IMAGES_PER_JOB == 1


@pytest.mark.parametrize(("kind", "expected_usd"), [
    (JobKind.GENERATE, 0.03),
    (JobKind.REMIX, 0.03),   # a remix is a new generation
    (JobKind.EDIT, 0.045),
])
def test_each_kind_uses_its_setting(kind: JobKind, expected_usd: float) -> None:
    settings = load_settings(env_file=None, environ={
        "PRICE_PER_IMAGE_USD": "0.03", "PRICE_PER_EDIT_USD": "0.045"})
    assert price_for(kind, settings) == expected_usd
    assert cost_microusd(kind, settings) == round(expected_usd * MICRO)


def test_only_edits_run_the_edit_model() -> None:
    assert [kind for kind in JobKind if kind.is_edit] == [JobKind.EDIT]
    assert JobKind("remix") is JobKind.REMIX  # stored by value
