"""What one job costs, by kind: pure, for admission and spend statistics.

Every kind of job makes exactly one image, so each counts as one image under every limit and cap
(`IMAGES_PER_JOB`); only the estimated price differs. A Remix is a new generation from an edited
prompt, so it is priced like any generation; an Edit runs Qwen-Image-Edit, priced separately
(`PRICE_PER_EDIT_USD`: Novita publishes no price for it, so the default is a guess equal to the
generation's).

Admission adopts it as: `evaluate(limits, usage, now, cost_microusd=cost_microusd(kind, settings))`
and records that cost in the ledger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from bot.jobs.model import JobKind
from bot.usage import usd_to_micro

if TYPE_CHECKING:
    from bot.config import Settings

IMAGES_PER_JOB: Final = 1




def price_for(kind: JobKind, settings: Settings) -> float:
    """Estimated price of one job of `kind`, in US dollars."""
    if kind is JobKind.EDIT:
        return settings.price_per_edit_usd
    return settings.price_per_image_usd


def cost_microusd(kind: JobKind, settings: Settings) -> int:
    """`price_for` in the ledger's unit (millionths of a dollar)."""
    return usd_to_micro(price_for(kind, settings)) * IMAGES_PER_JOB
