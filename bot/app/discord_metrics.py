"""Discord REST traffic as metrics, observed on discord.py's own HTTP session.

An `aiohttp.TraceConfig` handed to the client (`http_trace=`) sees every request discord.py
sends and every answer, 429s included (discord.py retries those itself, so the edge never sees
them). From that we count message edits, 429s and other errors, and time acknowledgements:
an interaction's id is a snowflake holding its creation time, so creation → our callback's
answer is the latency the member felt. Tokens in URLs are never recorded.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Final, Protocol

import aiohttp
import discord

_CALLBACK: Final = re.compile(r"/interactions/(\d+)/[^/]+/callback$")
_WEBHOOK_EDIT: Final = re.compile(r"/webhooks/\d+/[^/]+/messages/[^/]+$")
_CHANNEL_EDIT: Final = re.compile(r"/channels/\d+/messages/\d+$")


class DiscordRecorder(Protocol):
    def discord_edit(self, target: str) -> None: ...

    def discord_rate_limited(self, kind: str, scope: str) -> None: ...

    def discord_error(self, kind: str, status: int) -> None: ...

    def acknowledged(self, seconds: float) -> None: ...


def request_kind(method: str, path: str) -> str:
    """A coarse, token-free label for a Discord REST call."""
    if _CALLBACK.search(path):
        return "ack"
    if method == "PATCH" and _WEBHOOK_EDIT.search(path):
        return "edit_interaction"
    if method == "PATCH" and _CHANNEL_EDIT.search(path):
        return "edit_channel"
    if "/webhooks/" in path:
        return "followup"
    if method == "POST" and path.endswith("/messages"):
        return "send"
    return "other"


def discord_trace(
    recorder: DiscordRecorder, now: Callable[[], float] = time.time
) -> aiohttp.TraceConfig:
    """A trace config feeding `recorder` from discord.py's HTTP session (`now`: Unix seconds)."""

    async def on_request_end(
        _session: aiohttp.ClientSession,
        _context: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        path = params.url.path
        kind = request_kind(params.method, path)
        status = params.response.status
        if status == 429:
            scope = params.response.headers.get("X-RateLimit-Scope", "unknown")
            recorder.discord_rate_limited(kind, scope)
            return
        if status >= 400:
            recorder.discord_error(kind, status)
            return
        if kind == "edit_interaction":
            recorder.discord_edit("interaction")
        elif kind == "edit_channel":
            recorder.discord_edit("channel")
        elif kind == "ack":
            match = _CALLBACK.search(path)
            assert match is not None
            created = discord.utils.snowflake_time(int(match.group(1))).timestamp()
            recorder.acknowledged(now() - created)

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_request_end)
    return trace
