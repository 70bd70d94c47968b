"""The mock Novita's benchmark options: realistic JPEG sizes and the /_control/tasks timings."""

from __future__ import annotations

import io

import aiohttp
from PIL import Image

from bot.config import Secret
from bot.imaging import ImageSize
from bot.novita.client import NovitaClient
from fakes.clock import ManualClock
from fakes.novita.images import REALISTIC_JPEG_BYTES, pad_jpeg, render_prompt_jpeg
from fakes.novita.server import MockNovita, MockNovitaConfig


def test_padding_reaches_the_target_and_keeps_a_decodable_picture() -> None:
    jpeg = render_prompt_jpeg("", 512, 512)
    padded = pad_jpeg(jpeg, 340_000)
    assert len(padded) == 340_000
    with Image.open(io.BytesIO(padded)) as image:
        image.load()
        assert image.size == (512, 512)
    assert pad_jpeg(padded, 1000) == padded  # never shrinks


async def test_realistic_sizes_and_timings_are_served() -> None:
    clock = ManualClock(100.0)
    config = MockNovitaConfig(
        time_scale=0.01, queue_probability=0, seed=3, clock=clock, draw_prompt=False,
        jpeg_bytes_by_pixels=REALISTIC_JPEG_BYTES, control_api=True,
    )
    async with MockNovita(config) as mock:
        client = NovitaClient(
            Secret(config.api_key),
            mock.base_url,
            trusted_image_hosts=[mock.base_url.removeprefix("http://")],
        )
        try:
            task_id = await client.submit("a fox", ImageSize(1536, 1536))
            clock.advance(mock.task(task_id).succeeded_at - clock())
            result = await client.get_task(task_id)
            image = await client.download(result.images[0], task_id=task_id)
        finally:
            await client.close()
        assert len(image) == 760_000
        async with aiohttp.ClientSession() as session, session.get(
            mock.base_url + "/_control/tasks"
        ) as response:
            body = await response.json()
    [record] = body["tasks"]
    assert record["task_id"] == task_id and record["size"] == "1536*1536"
    assert record["detected_at"] == record["succeeded_at"] == clock()
    assert record["poll_times"] == [clock()]
    assert record["download_times"] == [[clock(), clock()]]
    assert body["stats"]["downloads"] == 1
