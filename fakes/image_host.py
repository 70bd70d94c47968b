"""A misbehaving image host on 127.0.0.1, for testing the guarded download.

    async with FakeImageHost() as host:
        host.url("truncated.jpeg")   # → http://127.0.0.1:PORT/truncated.jpeg

Paths (every request is recorded in `host.requests`, so a test can prove none arrived):

    /good.jpeg, /good.png        small valid images
    /noise.png                   a 400×400 PNG of random pixels (~480 KB: it cannot compress)
    /truncated.jpeg              the first half of a valid JPEG
    /not-an-image.jpeg           an HTML page labelled image/jpeg
    /bomb.png                    a small PNG declaring 13000×13000 pixels (a decompression bomb)
    /slow.jpeg                   a valid JPEG sent one byte at a time, `byte_delay` apart
    /stall.jpeg                  headers, a few bytes, then nothing until the host stops
    /hold/NAME                   waits until `release()` (or the host stops), then serves /NAME
    /redirect/N/NAME             N redirects (302) in a chain, then /NAME
    /redirect-to?url=URL         one redirect to any URL (e.g. http://127.0.0.1:OTHER/…)
"""

from __future__ import annotations

import asyncio
import io
import random
import struct
import zlib
from functools import cache
from typing import Final

from aiohttp import web
from PIL import Image

from fakes.lifecycle import Served

BOMB_SIDE: Final = 13000


@cache
def good_jpeg(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@cache
def good_png(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


@cache
def noise_png(side: int = 400, seed: int = 0) -> bytes:
    """A PNG of random pixels: about `side`² × 3 bytes, since noise does not compress."""
    pixels = random.Random(seed).randbytes(side * side * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def truncated_jpeg() -> bytes:
    data = good_jpeg(256, 256)
    return data[: len(data) // 2]


@cache
def bomb_png(side: int = BOMB_SIDE) -> bytes:
    """A valid 1-bit PNG of side×side white pixels: ~20 KB on the wire, 169 MP once decoded.

    Built row by row so making it never needs the decoded size in memory.
    """
    row = b"\x00" + b"\xff" * ((side + 7) // 8)  # filter byte + packed pixels
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row) for _ in range(side)]
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", b"".join(parts))
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


NOT_AN_IMAGE: Final = b"<html><body><h1>Welcome to nginx!</h1></body></html>"


class FakeImageHost(Served):
    def __init__(self, *, byte_delay: float = 0.01) -> None:
        self.byte_delay = byte_delay
        self.requests: list[str] = []  # path (with query) of every request, in order
        self._released = asyncio.Event()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host_port(self) -> str:
        """This host as `TRUSTED_IMAGE_HOSTS` lists it."""
        return f"127.0.0.1:{self.port}"

    def url(self, path: str, *, host: str = "127.0.0.1") -> str:
        """A URL on this host; `host` lets a test reach it through a name of its own."""
        return f"http://{host}:{self.port}/{path.lstrip('/')}"

    def release(self) -> None:
        """Let every request held at /hold/… through."""
        self._released.set()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/redirect/{hops:\\d+}/{name:.*}", self._redirect_chain)
        app.router.add_get("/redirect-to", self._redirect_to)
        app.router.add_get("/hold/{name:.*}", self._hold)
        app.router.add_get("/{name:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self.base_url

    async def stop(self) -> None:
        self._stopping.set()
        self._released.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # --- handlers -------------------------------------------------------------------------------

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        return await self._respond(request, request.match_info["name"])

    async def _respond(self, request: web.Request, name: str) -> web.StreamResponse:
        if name == "slow.jpeg":
            return await self._trickle(request, good_jpeg())
        if name == "stall.jpeg":
            return await self._stall(request)
        body = {
            "good.jpeg": good_jpeg(),
            "good.png": good_png(),
            "noise.png": noise_png(),
            "truncated.jpeg": truncated_jpeg(),
            "not-an-image.jpeg": NOT_AN_IMAGE,
            "bomb.png": bomb_png(),
        }.get(name)
        if body is None:
            return web.Response(status=404, text="no such image")
        content_type = "image/png" if name.endswith(".png") else "image/jpeg"
        return web.Response(body=body, content_type=content_type)

    async def _redirect_chain(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        hops = int(request.match_info["hops"])
        name = request.match_info["name"]
        target = f"/redirect/{hops - 1}/{name}" if hops > 1 else f"/{name}"
        raise web.HTTPFound(target)

    async def _redirect_to(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        raise web.HTTPFound(request.query["url"])

    async def _hold(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        await self._released.wait()
        return await self._respond(request, request.match_info["name"])

    async def _trickle(self, request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        response.content_length = len(body)
        await response.prepare(request)
        for index in range(len(body)):
            if self._stopping.is_set():
                break
            await response.write(body[index : index + 1])
            await asyncio.sleep(self.byte_delay)
        return response

    async def _stall(self, request: web.Request) -> web.StreamResponse:
        body = good_jpeg()
        response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[:10])
        await self._stopping.wait()
        return response
