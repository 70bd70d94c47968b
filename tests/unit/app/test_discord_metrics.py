"""Discord REST traffic seen through discord.py's aiohttp trace: edits, 429s, ack latency."""

from __future__ import annotations

import aiohttp
import discord
import pytest
from aiohttp import web

from bot.app.discord_metrics import discord_trace, request_kind


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("POST", "/api/v10/interactions/123/tok.en-x/callback", "ack"),
        ("PATCH", "/api/v10/webhooks/1/tok/messages/@original", "edit_interaction"),
        ("PATCH", "/api/v10/webhooks/1/tok/messages/99", "edit_interaction"),
        ("PATCH", "/api/v10/channels/5/messages/6", "edit_channel"),
        ("POST", "/api/v10/webhooks/1/tok", "followup"),
        ("POST", "/api/v10/channels/5/messages", "send"),
        ("GET", "/api/v10/gateway/bot", "other"),
    ],
)
def test_request_kinds(method: str, path: str, kind: str) -> None:
    assert request_kind(method, path) == kind


class Recorder:
    def __init__(self) -> None:
        self.edits: list[str] = []
        self.limited: list[tuple[str, str]] = []
        self.errors: list[tuple[str, int]] = []
        self.acks: list[float] = []

    def discord_edit(self, target: str) -> None:
        self.edits.append(target)

    def discord_rate_limited(self, kind: str, scope: str) -> None:
        self.limited.append((kind, scope))

    def discord_error(self, kind: str, status: int) -> None:
        self.errors.append((kind, status))

    def acknowledged(self, seconds: float) -> None:
        self.acks.append(seconds)


async def test_trace_counts_what_discord_answered() -> None:
    async def callback(_request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def edit(request: web.Request) -> web.Response:
        if request.match_info["message"] == "limited":
            return web.json_response(
                {"retry_after": 1}, status=429, headers={"X-RateLimit-Scope": "user"}
            )
        if request.match_info["message"] == "gone":
            return web.json_response({"code": 10008}, status=404)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/interactions/{id}/{token}/callback", callback)
    app.router.add_patch("/webhooks/{app}/{token}/messages/{message}", edit)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    recorder = Recorder()
    created = discord.utils.time_snowflake(discord.utils.utcnow())
    created_at = discord.utils.snowflake_time(created).timestamp()
    trace = discord_trace(recorder, now=lambda: created_at + 0.4)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(trace_configs=[trace]) as http:
            for method, path in [
                ("POST", f"/interactions/{created}/secret-token/callback"),
                ("PATCH", "/webhooks/1/secret-token/messages/@original"),
                ("PATCH", "/webhooks/1/secret-token/messages/limited"),
                ("PATCH", "/webhooks/1/secret-token/messages/gone"),
            ]:
                async with http.request(method, base + path):
                    pass
    finally:
        await runner.cleanup()
    assert recorder.acks == pytest.approx([0.4])
    assert recorder.edits == ["interaction"]
    assert recorder.limited == [("edit_interaction", "user")]
    assert recorder.errors == [("edit_interaction", 404)]
