"""End to end: `/imagine-edit` uploads waiting in line hold no image bytes in the bot's memory
(each is parked in an anonymous temporary file, `bot.uploads.ParkedImage`), and each is let go
once Novita has it, when its job ends, or when it is refused before it runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes.image_host import noise_png
from fakes.stack import LocalStack
from tests.e2e.support import private_refusal
from tests.retained_memory import BotAllocations

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

UPLOADS = 8
SIDE = 300  # ~270 KB of noise each: one block, far above the bot's own bookkeeping


# One upstream slot, and an edit that Novita works on for 30 s (real): the first upload is at
# Novita for the whole test, every other one waits in line for its slot.
@pytest.mark.stack(fixed_duration=3000.0, settings={"max_concurrent_upstream_tasks": 1})
async def test_uploads_waiting_in_line_hold_no_image_bytes_in_memory(stack: LocalStack) -> None:
    parking = stack.services.edits.parking
    uploads = [
        stack.fake.upload(f"noise-{i}.png", noise_png(SIDE, seed=i), "image/png",
                          width=SIDE, height=SIDE)
        for i in range(UPLOADS)
    ]
    sizes = [len(upload.data) for upload in uploads]
    with BotAllocations() as held:
        for number, upload in enumerate(uploads):
            await stack.imagine_edit(stack.alice, upload, f"make it blue, take {number}")
        await stack.fake.wait_for(
            lambda: (parking.total_parked == UPLOADS and parking.count == UPLOADS - 1) or None,
            timeout=30.0)  # tracing every allocation slows the whole process down
        retained = held.now()
    # The bot read every upload (~2.2 MB in all) and holds none of them: the one at Novita was
    # let go when it was submitted, the seven in line are on disk. (Before parking: all 2.2 MB.)
    assert retained == 0, (retained, sum(sizes))
    assert stack.mock.stats.edits == 1
    # On disk: every upload but the one at Novita.
    assert parking.parked_bytes in {sum(sizes) - size for size in sizes}

    await stack.bot.close()  # shutdown: the waiting jobs end here, and their files with them
    assert parking.count == parking.parked_bytes == 0


@pytest.mark.stack(settings={"user_daily_quota": 1})
async def test_an_upload_refused_by_a_limit_is_let_go_at_once(stack: LocalStack) -> None:
    await stack.wait_result(await stack.imagine(stack.alice, "a lighthouse at dusk"))
    upload = stack.fake.upload("noise.png", noise_png(64), "image/png", width=64, height=64)
    reply = await private_refusal(await stack.imagine_edit(stack.alice, upload, "make it blue"))
    assert "limit" in reply.content.lower() or "today" in reply.content.lower(), reply.content
    # Read, checked and parked before admission said no; never left behind.
    assert stack.services.edits.parking.total_parked == 1
    assert stack.services.edits.parking.count == 0
    assert stack.mock.stats.edits == 0


async def test_an_upload_that_cannot_be_parked_is_refused_and_nothing_is_sent(
    stack: LocalStack, tmp_path: Path,
) -> None:
    stack.services.edits.parking.directory = str(tmp_path / "gone")  # a temporary folder lost
    upload = stack.fake.upload("noise.png", noise_png(64), "image/png", width=64, height=64)
    reply = await private_refusal(await stack.imagine_edit(stack.alice, upload, "make it blue"))
    assert "try again later" in reply.content
    assert stack.services.edits.parking.total_parked == 0
    assert stack.mock.stats.submits == stack.mock.stats.edits == 0
